/**
 * Skipped message keys expire by age too (issue 14, item 5): a message the relay withholds while
 * later ones are read leaves a skipped key behind; in a session that then goes quiet no count of
 * later messages ever expires it, so it is deleted a fixed time after it was stored, by the
 * member's own clock (`platform.now`), which the relay does not hold.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SKIPPED_KEY_MAX_AGE_MS, sodiumReady } from '@backchannel/client-sdk';
import type { RelayFrameOf } from '@backchannel/client-sdk/protocol';
import { startHostileProxy, type HostileProxy } from '../support/hostile-proxy.js';
import { startTestRelay, type TestRelay } from '../support/relay.js';
import { convenedChannel, until, type Party } from '../support/sdk.js';

type Deliver = RelayFrameOf<'deliver'>;

/** Skipped message keys in the member's stored state (what a seized device holds). */
async function storedSkippedKeys(party: Party): Promise<number> {
  const [key] = await party.store.list('backchannel/channel/');
  const record = (await party.store.get(key!)) as { group: { sessions: Record<string, { active: { ratchet: { skipped: object } }; previous: { ratchet: { skipped: object } }[] }> } };
  return Object.values(record.group.sessions)
    .flatMap((p) => [p.active, ...p.previous])
    .reduce((n, s) => n + Object.keys(s.ratchet.skipped).length, 0);
}

describe('skipped message keys expire by age', () => {
  let relay: TestRelay;
  let proxy: HostileProxy;
  let alice: Party;
  let bob: Party;
  let clock = Date.now();
  let withhold = false;
  const withheld: Deliver[] = [];

  beforeAll(async () => {
    await sodiumReady();
    relay = await startTestRelay();
    proxy = await startHostileProxy(relay.url);
    const ch = await convenedChannel(proxy.url, 2, {}, (i) => (i === 1 ? { platform: { now: () => clock } } : {}));
    [alice, bob] = ch.parties as [Party, Party];
    await ch.host.close();
    proxy.tamper = {
      toClient: (frame, link) => {
        if (!withhold || frame.type !== 'deliver' || link.member !== bob.client.memberKey) return [frame];
        withhold = false;
        withheld.push(frame);
        return [];
      },
    };
  });
  afterAll(async () => {
    for (const p of [alice, bob]) await p.client.close();
    await proxy.close();
    await relay.close();
  });

  /** Alice sends two messages; the relay withholds the first from Bob, who reads the second. Returns the withheld one. */
  async function withholdOne(): Promise<Deliver> {
    await alice.client.sendText('ice breaker'); // Bob answers nothing, so the session's chain stays one
    withhold = true;
    await alice.client.sendText('withheld');
    const later = await alice.client.sendText('read');
    await until(() => bob.messages.some((m) => m.seq === later.seq));
    expect(await storedSkippedKeys(bob)).toBeGreaterThan(0);
    return withheld.at(-1)!;
  }

  it('still opens a withheld message just before the age limit', async () => {
    const frame = await withholdOne();
    clock += SKIPPED_KEY_MAX_AGE_MS - 60_000;
    await bob.client.refreshGroup();
    proxy.links(bob.client.memberKey)[0]!.inject(frame);
    await until(() => bob.messages.some((m) => m.seq === frame.seq));
  });

  it('deletes the skipped key once it is SKIPPED_KEY_MAX_AGE_MS old, with no later message: the withheld message no longer opens', async () => {
    const frame = await withholdOne();
    clock += SKIPPED_KEY_MAX_AGE_MS;
    await bob.client.refreshGroup();
    expect(await storedSkippedKeys(bob)).toBe(0);
    proxy.links(bob.client.memberKey)[0]!.inject(frame);
    await until(() => bob.alarms.some((a) => a.seq === frame.seq && a.code === 'integrity_replay'));
    expect(bob.messages.some((m) => m.seq === frame.seq)).toBe(false);
  });
});
