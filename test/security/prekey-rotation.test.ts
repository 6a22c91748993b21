/**
 * Signed prekey rotation (issue 14, item 1): a member's signed prekey is replaced on a schedule
 * (its clock injected as `platform.now`), a bundle fetched before the rotation still opens a
 * session during the grace period, and afterwards the retired secret is gone from the member's
 * stored state, so a device seized then cannot open a first message sent to the retired prekey.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sodiumReady, type MemoryKeyStore, type PublishedSignedPrekey } from '@backchannel/client-sdk';
import { startHostileProxy, type HostileProxy } from '../support/hostile-proxy.js';
import { startTestRelay, type TestRelay } from '../support/relay.js';
import { convenedChannel, until, type Party } from '../support/sdk.js';

const DAY = 86_400_000;

/** What a seized device holds: the member's whole store, as text. */
async function seize(party: Party): Promise<string> {
  const store = party.store as MemoryKeyStore;
  const keys = await store.list();
  return JSON.stringify(await Promise.all(keys.map((k) => store.get(k))));
}

/** The member's signed prekeys as its stored record holds them (id and secret). */
async function storedSignedPrekeys(party: Party): Promise<{ id: number; secretKey: string }[]> {
  const [key] = await party.store.list('backchannel/channel/');
  const record = (await party.store.get(key!)) as { group: { prekeys: { signed: { id: number; secretKey: string }[] } } };
  return record.group.prekeys.signed.map((s) => ({ id: s.id, secretKey: s.secretKey }));
}

describe('signed prekeys rotate on a schedule and retired secrets are deleted after a grace period', () => {
  let relay: TestRelay;
  let proxy: HostileProxy;
  let bob: Party;
  let others: Party[];
  let clock = Date.now();
  /** Every signed prekey of Bob's the relay handed out, by id. */
  const bobBundles = new Map<number, PublishedSignedPrekey>();
  /** When set, the proxy hands this (older, validly signed) prekey of Bob's out instead of the current one. */
  let replayedPrekey: PublishedSignedPrekey | undefined;

  beforeAll(async () => {
    await sodiumReady();
    relay = await startTestRelay();
    proxy = await startHostileProxy(relay.url);
    // Bob (party 0) runs on a clock the test moves; rotation weekly, a retired key kept two days.
    const ch = await convenedChannel(proxy.url, 5, {}, (i) => (i === 0 ? { platform: { now: () => clock }, prekeyRotation: { everyMs: 7 * DAY, graceMs: 2 * DAY } } : {}));
    await ch.host.close();
    [bob, ...others] = ch.parties as [Party, ...Party[]];
    proxy.tamper = {
      toClient: (frame) => {
        if (frame.type !== 'prekeys.bundle' || frame.member !== bob.client.memberKey) return [frame];
        bobBundles.set(frame.signedPrekey.id, frame.signedPrekey);
        return [replayedPrekey === undefined ? frame : { ...frame, signedPrekey: replayedPrekey }];
      },
    };
  });
  afterAll(async () => {
    for (const p of [bob, ...others]) await p.client.close();
    await proxy.close();
    await relay.close();
  });

  it('publishes a new signed prekey when the old one falls due, opens initiations against the retired one within the grace period, and deletes its secret after it', async () => {
    const [carol, dave, erin, frank] = others as [Party, Party, Party, Party];
    // Carol starts a session with Bob before any rotation: the relay hands out his first signed prekey.
    const first = await carol.client.sendText('before rotation');
    await until(() => bob.messages.some((m) => m.seq === first.seq));
    const original = bobBundles.get(1)!;
    expect(original).toBeDefined();
    const originalSecret = (await storedSignedPrekeys(bob)).find((s) => s.id === 1)!.secretKey;

    // Six days on nothing is due; at seven the next sync rotates, and the relay hands out the new one.
    clock += 6 * DAY;
    await bob.client.refreshGroup();
    expect((await storedSignedPrekeys(bob)).map((s) => s.id)).toEqual([1]);
    clock += DAY;
    await bob.client.refreshGroup();
    expect((await storedSignedPrekeys(bob)).map((s) => s.id)).toEqual([2, 1]);
    const rotated = await dave.client.sendText('after rotation');
    await until(() => bob.messages.some((m) => m.seq === rotated.seq));
    expect(bobBundles.get(2)?.key).not.toBe(original.key);

    // A day into the grace period: an initiation from a bundle fetched before the rotation still opens.
    clock += DAY;
    await bob.client.refreshGroup();
    replayedPrekey = original;
    const inFlight = await erin.client.sendText('from an old bundle, within the grace period');
    await until(() => bob.messages.some((m) => m.seq === inFlight.seq));
    expect(bob.alarms.filter((a) => a.seq === inFlight.seq)).toEqual([]);

    // After the grace period the retired secret is gone from Bob's stored state…
    clock += DAY + 1;
    await bob.client.refreshGroup();
    expect((await storedSignedPrekeys(bob)).map((s) => s.id)).toEqual([2]);
    expect(await seize(bob)).not.toContain(originalSecret);

    // …so a first message sent to the retired prekey (Frank has no session with Bob) cannot be opened any more.
    const late = (await frank.client.sendText('to the retired prekey, after the grace period')).seq;
    await until(() => bob.alarms.some((a) => a.seq === late && a.code === 'decrypt_failed'));
    expect(bob.messages.some((m) => m.seq === late)).toBe(false);
  });
});
