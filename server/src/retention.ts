import { sql } from 'kysely';
import { toBase64Url } from '@backchannel/client-sdk/protocol';
import type { RelayContext } from './context.js';

const BATCH = 1_000;

interface ExpiredRow {
  channel_id: Uint8Array;
  seq: string;
  sender_key: Uint8Array;
  client_msg_id: string;
  recipients: string[];
}

/**
 * Purges ciphertext older than each channel's charter retention, delivered or not. Receipts
 * stay (they are tiny and bind no sender). A sender is told which of its messages expired
 * before every recipient had acked them: at once if online, else when it next subscribes.
 */
export class RetentionSweeper {
  readonly #ctx: RelayContext;
  readonly #timer: NodeJS.Timeout;
  #running: Promise<number> | undefined;

  constructor(ctx: RelayContext, intervalMs: number) {
    this.#ctx = ctx;
    this.#timer = setInterval(() => void this.sweep().catch(() => undefined), intervalMs);
    this.#timer.unref();
  }

  /** Runs one sweep as of `now`; resolves with the number of messages purged. */
  sweep(now: number = Date.now()): Promise<number> {
    this.#running ??= this.#sweep(now).finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  /** Stops the timer and waits for a running sweep. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#running?.catch(() => undefined);
  }

  async #sweep(now: number): Promise<number> {
    const { db } = this.#ctx;
    await this.#ctx.cursors.flush();
    let purged = 0;
    const senders = new Set<string>();
    for (;;) {
      const rows = await sql<ExpiredRow>`
        select m.channel_id, m.seq, m.sender_key, m.client_msg_id, array(select jsonb_object_keys(m.headers)) as recipients
          from messages m join channels c on c.id = m.channel_id
         where m.received_at < ${now} - (c.charter ->> 'retentionSec')::bigint * 1000
         order by m.channel_id, m.seq
         limit ${BATCH}`.execute(db.kysely);
      if (rows.rows.length === 0) break;
      await db.kysely.transaction().execute(async (trx) => {
        const cursors = await trx
          .selectFrom('members')
          .select(['channel_id', 'member_key', 'cursor_seq'])
          .where('channel_id', 'in', [...new Map(rows.rows.map((r) => [toBase64Url(r.channel_id), r.channel_id])).values()])
          .execute();
        const cursorOf = new Map(cursors.map((c) => [`${toBase64Url(c.channel_id)}|${toBase64Url(c.member_key)}`, Number(c.cursor_seq)]));
        const notices = rows.rows.filter((r) =>
          r.recipients.some((k) => (cursorOf.get(`${toBase64Url(r.channel_id)}|${k}`) ?? 0) < Number(r.seq)),
        );
        for (const r of rows.rows) {
          await trx.deleteFrom('messages').where('channel_id', '=', r.channel_id).where('seq', '=', r.seq).execute();
        }
        if (notices.length > 0) {
          await trx
            .insertInto('expiry_notices')
            .values(notices.map((n) => ({ channel_id: n.channel_id, sender_key: n.sender_key, client_msg_id: n.client_msg_id })))
            .onConflict((oc) => oc.doNothing())
            .execute();
          for (const n of notices) senders.add(`${toBase64Url(n.channel_id)}|${toBase64Url(n.sender_key)}`);
        }
      });
      purged += rows.rows.length;
      if (rows.rows.length < BATCH) break;
    }
    for (const entry of senders) {
      const [channel, sender] = entry.split('|') as [string, string];
      if (this.#ctx.connections.of(sender).size > 0) await deliverExpiryNotices(this.#ctx, channel, sender);
    }
    return purged;
  }
}

/** Sends a sender its pending expiry notices for a channel (then forgets them). */
export async function deliverExpiryNotices(ctx: RelayContext, channelText: string, senderText: string): Promise<void> {
  const state = await ctx.cache.get(channelText);
  const sender = state?.members.get(senderText);
  if (state === undefined || sender === undefined) return;
  const rows = await ctx.db.kysely
    .deleteFrom('expiry_notices')
    .where('channel_id', '=', state.id)
    .where('sender_key', '=', sender.key)
    .returning('client_msg_id')
    .execute();
  if (rows.length === 0) return;
  for (const conn of ctx.connections.of(senderText)) {
    conn.send({ type: 'expired', channel: channelText, clientMsgIds: rows.map((r) => r.client_msg_id) });
  }
}
