import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nextReceiptChain, sodiumReady } from '@backchannel/client-sdk';
import { BackchannelError, toBase64Url } from '@backchannel/client-sdk/protocol';
import { connectDb, type Db } from '../../server/src/db/connect.js';
import { migrateToLatest } from '../../server/src/db/migrate.js';
import { MessageLog, type CommitPath, type Committed, type Submission } from '../../server/src/store/message-log.js';
import { byteaArray, int8Array, jsonbArray, textArray } from '../../server/src/store/pg-arrays.js';
import { createTestDatabase } from '../support/relay.js';

// The group commit (server/src/store/message-log.ts) on a real PostgreSQL: two logs on one
// database stand for two relay nodes. Each commits in one round trip from the heads it committed
// last; when the other node has moved a head, the database refuses (bc_commit_batch, migration
// 0004) and the batch is redone under row locks. Whatever the interleaving: one gap-free sequence
// per channel, a receipt chain that recomputes from genesis, retries resolved to the first commit.

const GENESIS: Uint8Array = new Uint8Array(32).fill(7);

describe('group commit across two nodes on one database', () => {
  let dbA: Db;
  let dbB: Db;
  let logA: MessageLog;
  let logB: MessageLog;
  const paths: Record<'A' | 'B', CommitPath[]> = { A: [], B: [] };
  const channels = Array.from({ length: 4 }, () => randomBytes(16));
  const senders = Array.from({ length: 4 }, () => randomBytes(32));

  beforeAll(async () => {
    await sodiumReady();
    const url = await createTestDatabase();
    dbA = connectDb(url, 4);
    dbB = connectDb(url, 4);
    await migrateToLatest(dbA);
    for (const id of channels) {
      await dbA.pool.query(`insert into channels (id, status, charter, chain) values ($1, 'open', '{}', $2)`, [id, GENESIS]);
    }
    logA = new MessageLog(dbA.pool, () => undefined, { observe: (t) => paths.A.push(t.path) });
    logB = new MessageLog(dbB.pool, () => undefined, { observe: (t) => paths.B.push(t.path) });
  });
  afterAll(async () => {
    for (const log of [logA, logB]) log?.release();
    await dbA?.kysely.destroy();
    await dbB?.kysely.destroy();
  });

  const submission = (channel: Buffer, sender: Buffer, clientMsgId: string): Submission => ({
    channel,
    channelText: toBase64Url(channel),
    sender,
    senderText: toBase64Url(sender),
    clientMsgId,
    headers: { [toBase64Url(senders[0]!)]: 'aGVhZGVy', 'ключ': 'значение ✓' },
    body: `body of ${clientMsgId} — ünïcödé`,
    commitment: randomBytes(32),
  });

  it('keeps one gap-free sequence and chain per channel while both nodes commit to the same channels', async () => {
    const acked: Committed[] = [];
    for (let wave = 0; wave < 30; wave++) {
      const subs = channels.flatMap((ch, c) => senders.map((s, i) => ({ log: (wave + c + i) % 2 === 0 ? logA : logB, sub: submission(ch, s, `w${wave}-c${c}-s${i}`) })));
      acked.push(...(await Promise.all(subs.map(({ log, sub }) => log.submit(sub)))));
    }
    expect(acked.every((c) => !c.duplicate)).toBe(true);

    for (const ch of channels) {
      const rows = (await dbA.pool.query<{ seq: string; commitment: Buffer; received_at: string; chain: Buffer; body: string; headers: Record<string, string> }>(
        'select seq, commitment, received_at, chain, body, headers from messages where channel_id = $1 order by seq',
        [ch],
      )).rows;
      expect(rows.map((r) => Number(r.seq))).toEqual(Array.from({ length: 30 * senders.length }, (_, i) => i + 1));
      let chain: Uint8Array = GENESIS;
      for (const r of rows) {
        chain = nextReceiptChain(chain, Number(r.seq), new Uint8Array(r.commitment), Number(r.received_at));
        expect(toBase64Url(new Uint8Array(r.chain))).toBe(toBase64Url(chain));
      }
      const head = (await dbA.pool.query<{ head_seq: string; chain: Buffer }>('select head_seq, chain from channels where id = $1', [ch])).rows[0]!;
      expect(Number(head.head_seq)).toBe(rows.length);
      expect(toBase64Url(new Uint8Array(head.chain))).toBe(toBase64Url(chain));
      // What each sender was acked with is what is stored, text and JSON intact.
      for (const c of acked.filter((a) => a.channelText === toBase64Url(ch))) {
        const row = rows[c.seq - 1]!;
        expect(toBase64Url(new Uint8Array(row.chain))).toBe(toBase64Url(c.chain));
        expect(row.body).toBe(c.body);
        expect(row.headers).toEqual(c.headers);
      }
    }
  });

  it('commits in one round trip from a known head, and redoes under locks a batch whose head another node moved', async () => {
    const ch = channels[1]!;
    const on = async (log: MessageLog, node: 'A' | 'B', id: string): Promise<CommitPath> => {
      const before = paths[node].length;
      await log.submit(submission(ch, senders[0]!, id));
      expect(paths[node]).toHaveLength(before + 1);
      return paths[node].at(-1)!;
    };
    // A NOTIFY that the channel moved (the logs here hear none otherwise): forget the head, read it again.
    const notify = (log: MessageLog) => log.advanced(toBase64Url(ch), Number.MAX_SAFE_INTEGER);
    notify(logA);
    expect(await on(logA, 'A', 'p1')).toBe('fast');
    expect(await on(logA, 'A', 'p2')).toBe('fast');
    notify(logB);
    expect(await on(logB, 'B', 'p3')).toBe('fast');
    // A was not told of p3: its head is stale, the database refuses the batch, it is redone under locks.
    expect(await on(logA, 'A', 'p4')).toBe('locked');
    expect(await on(logA, 'A', 'p5')).toBe('fast');
    notify(logB);
    expect(await on(logB, 'B', 'p6')).toBe('fast');
    const seqs = await dbA.pool.query<{ seq: string }>('select seq from messages where channel_id = $1 and client_msg_id like $2 order by seq', [ch, 'p%']);
    const last = Number(seqs.rows.at(-1)!.seq);
    expect(seqs.rows.map((r) => Number(r.seq))).toEqual(Array.from({ length: 6 }, (_, i) => last - 5 + i));
  });

  it('resolves a retried message id to its first commit, on either node and within one batch', async () => {
    const ch = channels[0]!;
    const first = await logA.submit(submission(ch, senders[1]!, 'retry-me'));
    const again = await logA.submit(submission(ch, senders[1]!, 'retry-me'));
    const elsewhere = await logB.submit(submission(ch, senders[1]!, 'retry-me'));
    for (const r of [again, elsewhere]) expect({ seq: r.seq, chain: toBase64Url(r.chain), duplicate: r.duplicate }).toEqual({ seq: first.seq, chain: toBase64Url(first.chain), duplicate: true });

    const [x, y] = await Promise.all([logA.submit(submission(ch, senders[2]!, 'twice')), logA.submit(submission(ch, senders[2]!, 'twice'))]);
    expect(x!.seq).toBe(y!.seq);
    expect([x!.duplicate, y!.duplicate].sort()).toEqual([false, true]);
    const stored = await dbA.pool.query('select count(*)::int as n from messages where channel_id = $1 and client_msg_id = any($2)', [ch, ['retry-me', 'twice']]);
    expect(stored.rows[0]).toEqual({ n: 2 });
  });

  it('refuses a channel that closed after its head was cached, and writes nothing', async () => {
    const ch = channels[3]!;
    await logA.submit(submission(ch, senders[0]!, 'before-close'));
    const head = await dbA.pool.query<{ head_seq: string }>('select head_seq from channels where id = $1', [ch]);
    await dbA.pool.query(`update channels set status = 'dissolved' where id = $1`, [ch]);
    const refused = await logA.submit(submission(ch, senders[0]!, 'after-close')).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(BackchannelError);
    expect((refused as BackchannelError).code).toBe('channel_closed');
    const after = await dbA.pool.query<{ head_seq: string; n: number }>(
      'select head_seq, (select count(*)::int from messages where channel_id = $1 and client_msg_id = $2) as n from channels where id = $1',
      [ch, 'after-close'],
    );
    expect(after.rows[0]).toEqual({ head_seq: head.rows[0]!.head_seq, n: 0 });
  });
});

describe('binary array parameters', () => {
  let db: Db;
  beforeAll(async () => {
    db = connectDb(await createTestDatabase(), 1);
  });
  afterAll(async () => {
    await db?.kysely.destroy();
  });

  it('reach PostgreSQL as the values they encode, empty arrays included', async () => {
    const texts = ['', 'plain', 'quote " and backslash \\ and comma ,', '{braces}', 'NULL', 'emoji 🔐 and ünïcödé'];
    const bytes = [new Uint8Array(0), new Uint8Array([0, 1, 2, 255]), randomBytes(1024)];
    const ints = [0, 1, -1, 2 ** 53 - 1, -(2 ** 53 - 1)];
    const json = ['{}', '{"a":"b"}', '{"ключ":"значение","n":[1,2,{"x":null}]}'];
    const r = await db.pool.query<{ t: string[]; b: Buffer[]; i: string[]; j: unknown[]; e: string[]; eb: Buffer[] }>(
      'select $1::text[] as t, $2::bytea[] as b, $3::bigint[] as i, $4::jsonb[] as j, $5::text[] as e, $6::bytea[] as eb',
      [textArray(texts), byteaArray(bytes), int8Array(ints), jsonbArray(json), textArray([]), byteaArray([])],
    );
    const row = r.rows[0]!;
    expect(row.t).toEqual(texts);
    expect(row.b.map((b) => toBase64Url(new Uint8Array(b)))).toEqual(bytes.map((b) => toBase64Url(b)));
    expect(row.i.map(Number)).toEqual(ints);
    expect(row.j).toEqual(json.map((j) => JSON.parse(j) as unknown));
    expect(row.e).toEqual([]);
    expect(row.eb).toEqual([]);
  });

  it('are refused by PostgreSQL when the element type does not match the declared one', async () => {
    await expect(db.pool.query('select $1::bigint[]', [textArray(['1'])])).rejects.toThrow(/element type 25 \(text\) instead of expected 20 \(bigint\)/);
  });
});
