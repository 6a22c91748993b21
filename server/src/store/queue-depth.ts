import { sql } from 'kysely';
import type { Db } from '../db/connect.js';

/**
 * Stored messages not yet acknowledged by a recipient, counted once per (message, recipient):
 * for each active party, the messages addressed to it (it has a header) above its durable
 * delivery cursor. Exact up to the cursor flush interval (acks are written about once a
 * second). It reads only the unacknowledged tail of each channel, so it costs what the queue
 * holds; a statement timeout bounds it on a database with a very large backlog.
 */
export async function countQueuedMessages(db: Db, timeoutMs = 2_000): Promise<number> {
  return db.kysely.transaction().execute(async (trx) => {
    await sql`select set_config('statement_timeout', ${String(timeoutMs)}, true)`.execute(trx);
    // Headers are keyed by the recipient's key as unpadded base64url text.
    const { rows } = await sql<{ n: string }>`
      select count(*) as n
        from members mb
        join messages m on m.channel_id = mb.channel_id and m.seq > mb.cursor_seq
       where mb.status = 'active' and mb.role = 'party'
         and m.headers ? rtrim(translate(encode(mb.member_key, 'base64'), '+/', '-_'), '=')`.execute(trx);
    return Number(rows[0]?.n ?? 0);
  });
}
