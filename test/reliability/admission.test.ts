import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromBase64Url, toBase64Url, type RelayFrame } from '@backchannel/client-sdk/protocol';
import { checkSequences } from '../support/load.js';
import { openChannel, type OpenChannel, type RawMember } from '../support/members.js';
import { startTestRelay, type TestRelay } from '../support/relay.js';
import { RawClient } from './support/raw-client.js';

// The overload harness, not timed: the relay is driven past a small configured capacity by
// holding its commit pipeline still (a test transaction locks the channel's row, so the batch
// in flight waits for it), which makes every admission decision deterministic. Checked: what
// is admitted is acknowledged once the pipeline moves, what is refused is answered `overloaded`
// with a retry-after hint — before it is even validated — and the database holds exactly the
// acknowledged messages, each once, in one gap-free sequence.

const BODY = toBase64Url(new Uint8Array(1024).fill(7));
const COMMITMENT = toBase64Url(new Uint8Array(32));

/** A send as the SDK writes it (`type` first): the shape the relay refuses before parsing. */
function sendText(rid: number, channel: string, to: string, clientMsgId: string, commitment = COMMITMENT): string {
  return JSON.stringify({ type: 'send', channel, clientMsgId, headers: { [to]: 'AAAA' }, body: BODY, commitment, rid });
}

/** Answers to requests, by rid. */
function answers(client: RawClient): Map<number, RelayFrame> {
  const out = new Map<number, RelayFrame>();
  for (const f of client.frames) if ('rid' in f && f.rid !== undefined) out.set(f.rid, f);
  return out;
}

/** Waits until every one of `rids` is answered. */
async function answered(client: RawClient, rids: number[]): Promise<Map<number, RelayFrame>> {
  for (;;) {
    const got = answers(client);
    if (rids.every((r) => got.has(r))) return got;
    if (client.closeCode !== undefined) throw new Error(`socket closed (${client.closeCode})`);
    await client.waitFrames(client.frames.length + 1);
  }
}

describe('overload harness', () => {
  const MAX_PENDING = 16;
  const DELAY_MS = 50;
  let relay: TestRelay;
  let ch: OpenChannel;
  let alice: RawMember;
  let bob: RawMember;
  let client: RawClient;
  let db: pg.Client;
  let rid = 1;

  beforeAll(async () => {
    relay = await startTestRelay({ BACKCHANNEL_LOG_LEVEL: 'warn', BACKCHANNEL_MAX_PENDING_SENDS: String(MAX_PENDING), BACKCHANNEL_MAX_QUEUE_DELAY_MS: String(DELAY_MS) });
    ch = await openChannel(relay.url, 2);
    [alice, bob] = ch.parties as [RawMember, RawMember];
    client = await RawClient.open(relay.url, alice.dh);
    db = new pg.Client({ connectionString: relay.databaseUrl });
    await db.connect();
  });
  afterAll(async () => {
    client?.close();
    await db?.end();
    for (const m of [ch?.host, alice, bob]) await m?.conn.close();
    await relay?.close();
  });

  /** Runs `body` while the channel's row is locked: the commit in flight cannot finish. */
  async function withPipelineHeld(body: () => Promise<void>): Promise<void> {
    await db.query('begin');
    await db.query('select 1 from channels where id = $1 for update', [Buffer.from(fromBase64Url(ch.channel)!)]);
    try {
      await body();
    } finally {
      await db.query('commit');
    }
  }

  const acked: string[] = [];

  beforeAll(async () => {
    // One send through first, so the relay knows the channel (cache, head) and every later
    // burst queues in the order it was sent.
    const r = rid++;
    client.sendRaw(sendText(r, ch.channel, bob.key, `warm-${r}`));
    expect((await answered(client, [r])).get(r)?.type).toBe('sent');
    acked.push(`warm-${r}`);
  });

  it('admits up to its bound, refuses the rest before validating it, and acks every admitted send once the pipeline moves', async () => {
    const BURST = 100;
    const valid = Array.from({ length: BURST }, () => rid++);
    const invalid = Array.from({ length: 20 }, () => rid++);
    let ping = 0;
    await withPipelineHeld(async () => {
      for (const r of valid) client.sendRaw(sendText(r, ch.channel, bob.key, `h-${r}`));
      // The first send leaves alone in a batch (now waiting on the lock); the next MAX_PENDING queue.
      const early = await answered(client, valid.slice(1 + MAX_PENDING));
      for (const r of valid.slice(1 + MAX_PENDING)) expect(early.get(r)).toMatchObject({ type: 'error', code: 'overloaded', retryAfterMs: DELAY_MS });
      // Invalid sends (a commitment that is not base64url) are refused as overloaded, not as
      // bad frames: the relay did not spend a parse and a validation on them.
      for (const r of invalid) client.sendRaw(sendText(r, ch.channel, bob.key, `bad-${r}`, '***'));
      const refused = await answered(client, invalid);
      for (const r of invalid) expect(refused.get(r)).toMatchObject({ type: 'error', code: 'overloaded' });
      // Other requests are unharmed.
      ping = rid++;
      client.send({ type: 'ping', rid: ping });
      expect((await answered(client, [ping])).get(ping)).toEqual({ type: 'ok', rid: ping });
      // Nothing admitted was answered while the pipeline was held.
      const now = answers(client);
      expect(valid.slice(0, 1 + MAX_PENDING).filter((r) => now.has(r))).toEqual([]);
    });
    const all = await answered(client, valid);
    const sent = valid.filter((r) => all.get(r)?.type === 'sent');
    expect(sent).toEqual(valid.slice(0, 1 + MAX_PENDING));
    acked.push(...sent.map((r) => `h-${r}`));
  });

  it('refuses by queueing delay only once a full batch is waiting and its oldest send has waited too long', async () => {
    // Past a full batch (512) the bound is the delay, so raise the count bound out of the way
    // on a second relay with the same channel layout.
    const big = await startTestRelay({ BACKCHANNEL_LOG_LEVEL: 'warn', BACKCHANNEL_MAX_PENDING_SENDS: '100000', BACKCHANNEL_MAX_QUEUE_DELAY_MS: String(DELAY_MS) });
    const ch2 = await openChannel(big.url, 2);
    const [a2, b2] = ch2.parties as [RawMember, RawMember];
    const c2 = await RawClient.open(big.url, a2.dh);
    const db2 = new pg.Client({ connectionString: big.databaseUrl });
    await db2.connect();
    try {
      const FULL = 1 + 512 + 88;
      const first = Array.from({ length: FULL }, () => rid++);
      const late = Array.from({ length: 10 }, () => rid++);
      await db2.query('begin');
      await db2.query('select 1 from channels where id = $1 for update', [Buffer.from(fromBase64Url(ch2.channel)!)]);
      for (const r of first) c2.sendRaw(sendText(r, ch2.channel, b2.key, `d-${r}`));
      // Every send of the burst is admitted or refused only by delay; wait until the oldest
      // waiting send is older than the bound (an untimed check: it waits as long as the lock holds).
      const ping = rid++;
      c2.send({ type: 'ping', rid: ping });
      await answered(c2, [ping]);
      await new Promise((resolve) => setTimeout(resolve, DELAY_MS * 2));
      for (const r of late) c2.sendRaw(sendText(r, ch2.channel, b2.key, `d-${r}`));
      const refusedLate = await answered(c2, late);
      for (const r of late) expect(refusedLate.get(r)).toMatchObject({ type: 'error', code: 'overloaded' });
      await db2.query('commit');
      const all = await answered(c2, first);
      const sent = first.filter((r) => all.get(r)?.type === 'sent');
      // At least a full batch and the one in flight were admitted; refusals only past that.
      expect(sent.length).toBeGreaterThanOrEqual(1 + 512);
      for (const r of first) expect(['sent', 'error']).toContain(all.get(r)?.type);
      const [check] = await checkSequences(big.databaseUrl, [ch2.channel]);
      expect(check).toEqual({ channel: ch2.channel, rows: sent.length, receipts: sent.length, head: sent.length, gaps: [] });
    } finally {
      c2.close();
      await db2.end();
      for (const m of [ch2.host, a2, b2]) await m.conn.close();
      await big.close();
    }
  });

  it('keeps acknowledging admitted sends while it refuses the excess, round after round', async () => {
    const ROUNDS = 4;
    for (let round = 0; round < ROUNDS; round++) {
      const burst = Array.from({ length: 60 }, () => rid++);
      await withPipelineHeld(async () => {
        for (const r of burst) client.sendRaw(sendText(r, ch.channel, bob.key, `r${round}-${r}`));
        await answered(client, burst.slice(1 + MAX_PENDING));
      });
      const all = await answered(client, burst);
      const sent = burst.filter((r) => all.get(r)?.type === 'sent');
      expect(sent).toEqual(burst.slice(0, 1 + MAX_PENDING));
      for (const r of burst.slice(1 + MAX_PENDING)) expect(all.get(r)).toMatchObject({ code: 'overloaded' });
      acked.push(...sent.map((r) => `r${round}-${r}`));
    }
    expect(acked).toHaveLength(1 + (1 + MAX_PENDING) * (ROUNDS + 1));
  });

  it('stores exactly the acknowledged messages, each once, in one gap-free sequence', async () => {
    const [check] = await checkSequences(relay.databaseUrl, [ch.channel]);
    expect(check).toEqual({ channel: ch.channel, rows: acked.length, receipts: acked.length, head: acked.length, gaps: [] });
    const rows = await db.query<{ client_msg_id: string; n: string }>(
      'select client_msg_id, count(*) as n from messages where channel_id = $1 group by client_msg_id',
      [Buffer.from(fromBase64Url(ch.channel)!)],
    );
    expect(rows.rows.map((r) => r.client_msg_id).sort()).toEqual([...acked].sort());
    expect(rows.rows.every((r) => r.n === '1')).toBe(true);
  });
});
