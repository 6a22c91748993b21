import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { disclosureContentHash, signConsent, verifyLog, type FormalLog, type PushFrame } from '@backchannel/client-sdk';
import { fromBase64Url, toBase64Url, type DisclosureContent } from '@backchannel/client-sdk/protocol';
import { rotateRelayKey } from '../../server/src/store/relay-keys.js';
import { inviteAndRedeem, openChannel, rawMember, reconnected, type RawMember } from '../support/members.js';
import { admit, headOf, readGroup, signChange } from '../../bench/src/raw-group.js';
import { startTestRelay, type TestRelay } from '../support/relay.js';
import { codeOf, until } from '../support/sdk.js';

/** `proposer` proposes a communiqué; every one of `parties` signs its consent with raw frames. */
async function proposeAndConsent(channel: string, proposer: RawMember, parties: RawMember[], content: DisclosureContent, releaseAt = 0): Promise<string> {
  const proposalId = toBase64Url(randomBytes(16));
  const contentHash = disclosureContentHash(content);
  await proposer.conn.request({ type: 'disclosure.propose', channel, proposalId, kind: content.kind, contentHash: toBase64Url(contentHash), rangeFrom: 0, rangeTo: 0, releaseAt });
  const { epoch, stateHash } = await headOf(proposer, channel);
  for (const p of parties) {
    const sig = await signConsent(
      { channel: fromBase64Url(channel)!, proposalId: fromBase64Url(proposalId)!, contentHash, kind: content.kind, rangeFrom: 0, rangeTo: 0, releaseAt, epoch, stateHash },
      p.sign.secretKey,
    );
    await p.conn.request({ type: 'disclosure.consent', channel, proposalId, sig: toBase64Url(sig) });
  }
  return proposalId;
}

const logOf = async (relay: TestRelay, channel: string): Promise<FormalLog> => (await fetch(`${relay.url}/v1/formal/${channel}`)).json() as Promise<FormalLog>;
const recordKeysOf = async (relay: TestRelay): Promise<string[]> =>
  ((await (await fetch(`${relay.url}/.well-known/backchannel.json`)).json()) as { recordKeys: string[] }).recordKeys;

describe('the formal record outlives restarts, key rotation and dissolve; observers see no deliberation', () => {
  const relays: TestRelay[] = [];
  const members: RawMember[] = [];
  afterAll(async () => {
    for (const m of members) await m.conn.close();
    for (const r of relays) await r.close();
  });

  it('pushes stage changes to the parties and the host, never to an observer, who cannot read proposals either', async () => {
    const relay = await startTestRelay();
    relays.push(relay);
    const ch = await openChannel(relay.url, 2);
    const [a, b] = ch.parties as [RawMember, RawMember];
    const observer = await rawMember(relay.url);
    members.push(ch.host, a, b, observer);
    await inviteAndRedeem(ch.host, ch.channel, observer, 'observer');
    await admit(ch.channel, [a, b], observer);
    const group = await readGroup(observer, ch.channel);
    expect(group.entries.at(-1)!.change).toMatchObject({ kind: 'add', member: { key: observer.key, role: 'observer' } });

    const seen = (m: RawMember): PushFrame[] => {
      const frames: PushFrame[] = [];
      m.conn.onPush((f) => frames.push(f));
      return frames;
    };
    const [byHost, byB, byObserver] = [seen(ch.host), seen(b), seen(observer)];
    const id = await proposeAndConsent(ch.channel, a, [a], { kind: 'communique', text: 'Only the parties deliberate.' });
    await b.conn.request({ type: 'disclosure.veto', channel: ch.channel, proposalId: id });
    const stages = (frames: PushFrame[]) => frames.flatMap((f) => (f.type === 'disclosure' ? [f.stage] : []));
    await until(() => stages(byHost).includes('vetoed') && stages(byB).includes('vetoed'));
    expect(stages(byHost)).toEqual(['proposed', 'proposed', 'vetoed']);
    expect(stages(byObserver)).toEqual([]);
    expect(await codeOf(observer.conn.request({ type: 'disclosure.get', channel: ch.channel, proposalId: id }))).toBe('wrong_role');
    expect((await ch.host.conn.request({ type: 'disclosure.get', channel: ch.channel, proposalId: id })).stage).toBe('vetoed');
  });

  it('publishes an embargoed disclosure after a relay restart and a record-key rotation; old and new records verify; records survive dissolve and refuse change', async () => {
    const first = await startTestRelay();
    relays.push(first);
    const ch = await openChannel(first.url, 2);
    const b = ch.parties[1]!;
    let a = ch.parties[0]!;
    members.push(ch.host);

    const early = await proposeAndConsent(ch.channel, a, [a, b], { kind: 'communique', text: 'Signed with the first key.' });
    expect((await a.conn.request({ type: 'disclosure.publish', channel: ch.channel, proposalId: early, content: { kind: 'communique', text: 'Signed with the first key.' } })).stage).toBe('published');

    const releaseAt = Date.now() + 4_000;
    const held = await proposeAndConsent(ch.channel, a, [a, b], { kind: 'communique', text: 'Released by the next relay.' }, releaseAt);
    const scheduled = await a.conn.request({ type: 'disclosure.publish', channel: ch.channel, proposalId: held, content: { kind: 'communique', text: 'Released by the next relay.' } });
    expect(scheduled.stage).toBe('scheduled');
    expect((await logOf(first, ch.channel)).records).toHaveLength(1); // nothing visible before its time
    const firstKey = toBase64Url(first.context.keys.record.publicKey);

    // The operator rotates the record key, and the relay restarts before the release time.
    await rotateRelayKey(first.context.db, 'record');
    for (const m of [ch.host, a, b]) await m.conn.close();
    await first.close();
    const second = await startTestRelay({ DATABASE_URL: first.databaseUrl });
    relays.push(second);
    const secondKey = toBase64Url(second.context.keys.record.publicKey);
    expect(secondKey).not.toBe(firstKey);

    await until(async () => (await logOf(second, ch.channel)).records.length === 2);
    const log = await logOf(second, ch.channel);
    expect(log.records.map((r) => r.relayKey)).toEqual([firstKey, secondKey]);
    expect(log.records[1]!.text).toBe('Released by the next relay.');
    expect(log.records[1]!.publishedAt).toBeGreaterThanOrEqual(releaseAt);
    const pinned = await recordKeysOf(second);
    expect(pinned).toEqual([secondKey, firstKey]);
    expect((await verifyLog(log, { fingerprint: ch.fingerprint, relayKeys: pinned })).ok).toBe(true);
    // Pinning only the new key: the old record is named as the one that does not check out.
    const newOnly = await verifyLog(log, { fingerprint: ch.fingerprint, relayKeys: [secondKey] });
    expect(newOnly.ok).toBe(false);
    if (!newOnly.ok) expect(newOnly.index).toBe(0);

    // Dissolve: deliberation goes, the published record stays, served and verifiable.
    a = reconnected(second.url, a);
    members.push(a);
    await a.conn.connect();
    await signChange(a, ch.channel, { kind: 'dissolve' });
    const db = second.context.db.kysely;
    const channelId = fromBase64Url(ch.channel)!;
    expect(await db.selectFrom('disclosures').select('proposal_id').where('channel_id', '=', channelId).execute()).toEqual([]);
    expect(await db.selectFrom('disclosure_consents').select('proposal_id').where('channel_id', '=', channelId).execute()).toEqual([]);
    const after = await logOf(second, ch.channel);
    expect(after.records).toEqual(log.records);
    expect(after.group.at(-1)?.change.kind).toBe('dissolve'); // the log grew by the signed dissolve only
    expect((await verifyLog(after, { fingerprint: ch.fingerprint, relayKeys: pinned })).ok).toBe(true);

    // Records never change, whoever asks: the database itself refuses.
    await expect(db.updateTable('formal_records').set({ published_at: 0 }).where('channel_id', '=', channelId).execute()).rejects.toThrow(/append-only/);
    await expect(db.deleteFrom('formal_records').where('channel_id', '=', channelId).execute()).rejects.toThrow(/append-only/);
    await expect(sql`truncate formal_records`.execute(db)).rejects.toThrow(/append-only/);
    expect((await logOf(second, ch.channel)).records).toHaveLength(2);
  });
});
