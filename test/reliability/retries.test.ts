import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { fromBase64Url, toBase64Url, type RelayFrameOf } from '@backchannel/client-sdk/protocol';
import { checkSequences } from '../support/load.js';
import { openChannel, type OpenChannel, type RawMember } from '../support/members.js';
import { freePort } from '../support/ports.js';
import { RelayProcess } from '../support/relay-process.js';
import { createTestDatabase } from '../support/relay.js';
import { figures, LONG, sleep } from './support/scenario.js';

// D5. Every message is sent three times with the same client message id: two copies at once,
// with a kill -9 of the relay landing among them, and a third after the restart.
const N = LONG ? 5_000 : 600;

describe('D5: retried sends', () => {
  let relay: RelayProcess;
  let databaseUrl: string;
  let ch: OpenChannel;
  let alice: RawMember;
  let bob: RawMember;

  beforeAll(async () => {
    databaseUrl = await createTestDatabase();
    relay = new RelayProcess(await freePort(), { DATABASE_URL: databaseUrl });
    await relay.start();
    ch = await openChannel(relay.url, 2);
    [alice, bob] = ch.parties as [RawMember, RawMember];
    await ch.host.conn.close();
  }, 60_000);

  afterAll(async () => {
    await alice?.conn.close();
    await bob?.conn.close();
    await relay?.kill9();
  });

  const frame = (i: number) =>
    ({
      type: 'send',
      channel: ch.channel,
      clientMsgId: `retry-${i}`,
      headers: { [bob.key]: toBase64Url(new TextEncoder().encode(String(i))) },
      body: toBase64Url(new Uint8Array(128).fill(i & 255)),
      commitment: toBase64Url(new Uint8Array(32).fill(i & 255)),
    }) as const;

  it('stores each message once, with one sequence, however often and across whatever restart it is sent', { timeout: 120_000 }, async () => {
    const answers = new Map<number, RelayFrameOf<'sent'>[]>();
    const record = (i: number) => (sent: RelayFrameOf<'sent'>) => {
      const list = answers.get(i) ?? [];
      list.push(sent);
      answers.set(i, list);
    };
    const first = Array.from({ length: N }, (_, i) => [
      alice.conn.request(frame(i), { retry: true }).then(record(i)),
      alice.conn.request(frame(i), { retry: true }).then(record(i)),
    ]).flat();
    // The kill lands once a few answers are in: some copies committed and answered, others in flight.
    while (answers.size < N / 10) await sleep(2);
    const answeredBeforeKill = answers.size;
    await relay.restart();
    await Promise.all(first);
    await Promise.all(Array.from({ length: N }, (_, i) => alice.conn.request(frame(i), { retry: true }).then(record(i))));

    const received: number[] = [];
    let last = 0;
    await bob.conn.connect();
    bob.conn.subscribe(ch.channel, { after: () => last, deliver: async (f) => void received.push((last = f.seq)) });
    await expect.poll(() => received.length, { timeout: 30_000 }).toBe(N);
    await sleep(500); // nothing more may come

    const client = new pg.Client({ connectionString: databaseUrl });
    await client.connect();
    const { rows } = await client
      .query<{ client_msg_id: string; n: string; seq: string }>(
        'select client_msg_id, count(*) over (partition by client_msg_id) as n, seq from messages where channel_id = $1',
        [Buffer.from(fromBase64Url(ch.channel)!)],
      )
      .finally(() => client.end());
    const [seqs] = await checkSequences(databaseUrl, [ch.channel]);

    const firstAnswers = [...answers.values()].filter((l) => l.some((a) => !a.duplicate)).length;
    figures('D5', { messages: N, answeredBeforeKill, sends: N * 3, rows: rows.length, answeredFresh: firstAnswers, restarts: relay.starts - 1 });
    expect(answeredBeforeKill).toBeLessThan(N); // the restart really came between copies
    expect(rows.length).toBe(N);
    expect(rows.every((r) => r.n === '1')).toBe(true);
    expect(seqs?.gaps).toEqual([]);
    for (let i = 0; i < N; i++) {
      const list = answers.get(i) ?? [];
      expect(list.length).toBe(3);
      // One sequence and one receipt-chain value for all three answers; at most one says "new".
      expect(new Set(list.map((a) => a.seq)).size).toBe(1);
      expect(new Set(list.map((a) => a.chain)).size).toBe(1);
      expect(list.filter((a) => !a.duplicate).length).toBeLessThanOrEqual(1);
    }
    expect(received).toEqual(Array.from({ length: N }, (_, i) => i + 1));
  });
});
