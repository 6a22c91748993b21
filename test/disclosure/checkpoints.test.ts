import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordHash, sodium, verifyLog, type FormalLog } from '@backchannel/client-sdk';
import { toBase64Url, type DisclosureContent } from '@backchannel/client-sdk/protocol';
import { rotateRelayKey } from '../../server/src/store/relay-keys.js';
import { startHostileProxy, type HostileProxy } from '../support/hostile-proxy.js';
import { startTestRelay, type TestRelay } from '../support/relay.js';
import { convenedChannel, until, type Party } from '../support/sdk.js';

// Checkpoints: after verifying each publication against its own fingerprint, every party's
// client co-signs the formal log's head. An observer that requires every party's co-signature
// rejects a history the parties never saw: a forked copy, a dropped record, or a record a party
// vetoed that the relay published anyway.
describe('formal-log checkpoints co-signed by the parties', () => {
  let relay: TestRelay;
  let proxy: HostileProxy;
  let parties: Party[];
  let fingerprint: string;
  let channel: string;

  const log = async (): Promise<FormalLog> => (await fetch(`${relay.url}/v1/formal/${channel}`)).json() as Promise<FormalLog>;
  const cosignersOf = async (index: number): Promise<number> => (await log()).checkpoints.filter((c) => c.index === index).length;

  /** The first party drafts and proposes; every party consents. */
  async function consented(content: DisclosureContent, releaseAt = 0): Promise<string> {
    const [alice, ...others] = parties as [Party, ...Party[]];
    const id = await alice.client.draft(content, { releaseAt });
    await until(() => others.every((p) => p.client.drafts().some((d) => d.proposalId === id)));
    await alice.client.disclosure.propose(id);
    for (const p of parties) await p.client.disclosure.consent(id);
    return id;
  }

  beforeAll(async () => {
    relay = await startTestRelay();
    proxy = await startHostileProxy(relay.url);
    const ch = await convenedChannel(proxy.url, 3);
    parties = ch.parties;
    fingerprint = ch.host.fingerprint;
    channel = ch.host.id;
    await ch.host.close();
  });
  afterAll(async () => {
    for (const p of parties) await p.client.close();
    await proxy.close();
    await relay.close();
  });

  it('every party co-signs the head it verified; an observer requiring that accepts the log', async () => {
    const id = await consented({ kind: 'communique', text: 'The parties agree to meet again.' });
    await parties[0]!.client.disclosure.publish(id);
    await until(async () => (await cosignersOf(0)) === 3);
    const verified = await verifyLog(await log(), { fingerprint, requireCosigned: true });
    expect(verified.ok ? verified.head : verified.reason).toMatchObject({ index: 0, parties: 3 });
    if (verified.ok) expect(verified.head?.cosigners).toHaveLength(3);
  });

  it('an observer shown a forked copy, or one with the checkpoints stripped or altered, rejects it, naming why', async () => {
    const real = await log();
    const record = real.records[0]!;
    // A fork the relay can sign on its own: the same consented content, another publication
    // time, so another record hash — every consent still verifies, only the parties' checkpoints
    // (of the record they verified) expose it.
    const { hash: _hash, sig: _sig, ...unsigned } = { ...record, publishedAt: record.publishedAt + 1 };
    const hash = recordHash(unsigned);
    const sig = sodium.crypto_sign_detached(hash, relay.context.keys.record.secretKey);
    const forked = { ...real, records: [{ ...unsigned, hash: toBase64Url(hash), sig: toBase64Url(sig) }] };
    const alone = await verifyLog({ ...forked, checkpoints: [] }, { fingerprint });
    expect(alone.ok).toBe(true); // without checkpoints a fork is consistent in itself…
    const one = await verifyLog(forked, { fingerprint });
    expect(one.ok ? 'ok' : one.reason).toMatch(/co-signed another record at 0: this log is forked from what the parties verified$/);
    const stripped = await verifyLog({ ...forked, checkpoints: [] }, { fingerprint, requireCosigned: true });
    expect(stripped.ok ? 'ok' : stripped.reason).toBe("the log's head is co-signed by 0 of 3 parties");
    const dropped = await verifyLog({ ...real, records: [] }, { fingerprint });
    expect(dropped.ok ? 'ok' : dropped.reason).toMatch(/co-signed record 0, which this log does not hold: records were dropped$/);
    const altered = await verifyLog({ ...real, checkpoints: real.checkpoints.map((c) => ({ ...c, hash: record.prev })) }, { fingerprint });
    expect(altered.ok ? 'ok' : altered.reason).toMatch(/^the checkpoint by \S+ is invalid$/);
  });

  it('a relay that ignores a veto during an embargo and publishes gets no co-signature from the vetoing party', async () => {
    const releaseAt = Date.now() + 60_000;
    const id = await consented({ kind: 'communique', text: 'Announced at the end of the embargo.' }, releaseAt);
    await parties[0]!.client.disclosure.publish(id);
    // Carol vetoes during the embargo; the relay (this proxy) swallows the veto and answers for it.
    const carol = parties[2]!;
    proxy.tamper = {
      toRelay: (frame, link) => {
        if (frame.type !== 'disclosure.veto' || link.member !== carol.client.memberKey) return [frame];
        void carol.client.disclosure.get(frame.proposalId).then((state) => link.inject({ ...state, rid: frame.rid, stage: 'vetoed' }));
        return [];
      },
    };
    expect((await carol.client.disclosure.veto(id)).stage).toBe('vetoed');
    proxy.tamper = {};
    expect(await relay.releaseEmbargoes(releaseAt + 1)).toBe(1);
    await until(async () => (await cosignersOf(1)) === 2);
    await until(() => carol.alarms.some((a) => a.code === 'record_invalid' && a.message.includes('which this party vetoed')));
    const verified = await verifyLog(await log(), { fingerprint, requireCosigned: true });
    expect(verified.ok ? 'ok' : verified.reason).toBe("the log's head is co-signed by 2 of 3 parties");
    // Without the requirement the record verifies, and the count shows the dispute.
    const lenient = await verifyLog(await log(), { fingerprint });
    expect(lenient.ok && lenient.head).toMatchObject({ index: 1, parties: 3 });
    if (lenient.ok) expect(lenient.head?.cosigners).toHaveLength(2);
  });

  it('refuses a record signed by a retired relay key and dated after its hand-over', async () => {
    const before = await log();
    const last = before.records.at(-1)!;
    const oldKey = last.relayKey;
    const old = await relay.context.db.kysely.selectFrom('relay_keys').select('secret_key').where('public_key', '=', Buffer.from(oldKey, 'base64url')).executeTakeFirstOrThrow();
    await rotateRelayKey(relay.context.db, 'record');
    const real = await log();
    expect(real.relayKeyChain.map((l) => l.key).slice(-2)).toEqual([oldKey, expect.any(String)]);
    const handedOver = await verifyLog(real, { fingerprint });
    expect(handedOver.ok ? "ok" : handedOver.reason).toBe("ok"); // the hand-over itself verifies
    // The retired key (say, leaked from an old backup) signs a copy of the last record, dated tomorrow.
    const { hash: _h, sig: _s, ...unsigned } = { ...last, index: last.index + 1, prev: last.hash, publishedAt: Date.now() + 86_400_000 };
    const hash = recordHash(unsigned);
    const forged = { ...unsigned, hash: toBase64Url(hash), sig: toBase64Url(sodium.crypto_sign_detached(hash, new Uint8Array(old.secret_key))) };
    const result = await verifyLog({ ...real, records: [...real.records, forged], checkpoints: [] }, { fingerprint });
    expect(result.ok ? 'ok' : result.reason).toMatch(new RegExp(`^signed by ${oldKey.replace(/[-]/g, '\\-')}, which was not the relay's key at `));
    // A copy that hides the hand-over cannot use the new key either: the chain from the genesis does not reach it.
    const hidden = await verifyLog({ ...real, relayKeyChain: real.relayKeyChain.slice(0, -1) }, { fingerprint });
    expect(hidden.ok).toBe(true);
  });
});
