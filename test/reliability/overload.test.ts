import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackchannelError, toBase64Url } from '@backchannel/client-sdk/protocol';
import { checkSequences } from '../support/load.js';
import { openChannel, type OpenChannel, type RawMember } from '../support/members.js';
import { startTestRelay, type TestRelay } from '../support/relay.js';

// Load shedding: past BACKCHANNEL_MAX_PENDING_SENDS sends waiting for a group commit, a send is
// answered `overloaded` at once instead of joining an ever longer queue. Nothing refused is
// stored, nothing acked is lost, and a client that retries (the SDK's transport does, with
// backoff) gets every message through, in one gap-free sequence.
describe('overload', () => {
  let relay: TestRelay;
  let ch: OpenChannel;
  let alice: RawMember;
  let bob: RawMember;
  const BURST = 200;

  beforeAll(async () => {
    relay = await startTestRelay({ BACKCHANNEL_LOG_LEVEL: 'warn', BACKCHANNEL_MAX_PENDING_SENDS: '8' });
    ch = await openChannel(relay.url, 2);
    [alice, bob] = ch.parties as [RawMember, RawMember];
  });
  afterAll(async () => {
    for (const m of [ch?.host, alice, bob]) await m?.conn.close();
    await relay?.close();
  });

  const send = (id: string, retry: boolean) =>
    alice.conn.request(
      { type: 'send', channel: ch.channel, clientMsgId: id, headers: { [bob.key]: 'AAAA' }, body: toBase64Url(new Uint8Array(1024).fill(1)), commitment: toBase64Url(new Uint8Array(32)) },
      { retry },
    );

  it('answers a burst beyond the bound with overloaded, and stores exactly what it acked', async () => {
    const results = await Promise.allSettled(Array.from({ length: BURST }, (_, i) => send(`shed-${i}`, false)));
    const acked = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const refused = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
    expect(refused.length).toBeGreaterThan(0);
    expect(acked.length).toBeGreaterThan(0);
    for (const e of refused) expect(BackchannelError.is(e) && e.code).toBe('overloaded');
    // One gap-free sequence holds exactly the acked messages.
    const [check] = await checkSequences(relay.databaseUrl, [ch.channel]);
    expect(check).toEqual({ channel: ch.channel, rows: acked.length, receipts: acked.length, head: acked.length, gaps: [] });
    expect(acked.map((a) => a.seq).sort((x, y) => x - y)).toEqual(Array.from({ length: acked.length }, (_, i) => i + 1));
  });

  it('gets every message of a burst through when the client retries', async () => {
    const before = (await checkSequences(relay.databaseUrl, [ch.channel]))[0]!.head;
    const acked = await Promise.all(Array.from({ length: BURST }, (_, i) => send(`retry-${i}`, true)));
    expect(acked.every((a) => !a.duplicate)).toBe(true);
    expect(acked.map((a) => a.seq).sort((x, y) => x - y)).toEqual(Array.from({ length: BURST }, (_, i) => before + i + 1));
    const [check] = await checkSequences(relay.databaseUrl, [ch.channel]);
    expect(check).toEqual({ channel: ch.channel, rows: before + BURST, receipts: before + BURST, head: before + BURST, gaps: [] });
  });
});
