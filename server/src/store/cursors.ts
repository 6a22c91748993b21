import { sql } from 'kysely';
import { fromBase64Url } from '@backchannel/client-sdk/protocol';
import type { Db } from '../db/connect.js';

/**
 * Per-member delivery cursors. Acks arrive per message; writing each would double the write
 * load, and the cursor is advisory (clients resume from their own last processed sequence), so
 * acks are coalesced in memory and written once a second and at shutdown.
 */
export class CursorStore {
  readonly #db: Db;
  readonly #pending = new Map<string, { channel: string; member: string; seq: number }>();
  readonly #timer: NodeJS.Timeout;

  constructor(db: Db, flushMs = 1_000) {
    this.#db = db;
    this.#timer = setInterval(() => void this.flush().catch(() => undefined), flushMs);
    this.#timer.unref();
  }

  /** Records an ack. */
  advance(channel: string, member: string, seq: number): Promise<void> {
    const k = `${channel}|${member}`;
    const prev = this.#pending.get(k);
    if (prev === undefined || prev.seq < seq) this.#pending.set(k, { channel, member, seq });
    return Promise.resolve();
  }

  /** Writes the coalesced cursors (only forward). */
  async flush(): Promise<void> {
    if (this.#pending.size === 0) return;
    const batch = [...this.#pending.values()];
    this.#pending.clear();
    const channels = batch.map((b) => fromBase64Url(b.channel)!);
    const members = batch.map((b) => fromBase64Url(b.member)!);
    const seqs = batch.map((b) => b.seq);
    await sql`update members m set cursor_seq = greatest(m.cursor_seq, v.seq)
              from unnest(${channels}::bytea[], ${members}::bytea[], ${seqs}::bigint[]) as v(c, k, seq)
              where m.channel_id = v.c and m.member_key = v.k`.execute(this.#db.kysely);
  }

  /** Stops the timer and writes what is left. */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.flush();
  }
}
