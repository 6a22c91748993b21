import { LIMITS, fromBase64Url, toBase64Url } from '@backchannel/client-sdk/protocol';
import { sql } from 'kysely';
import type { Db } from '../db/connect.js';
import type { Committed } from '../store/message-log.js';
import type { DeliverFrame } from './deliver-frame.js';
import type { Sink } from './sink.js';

/** What a subscription needs from the hub. */
export interface HeadSource {
  head(channelText: string): number;
}

/** This node's commits in flight (the message log): see `MessageLog.localCommit`. */
export interface LocalCommits {
  localCommit(channelText: string, seq: number): Promise<void> | undefined;
}

/**
 * Delivery of one channel to one member. It first catches up from the database in pages (the
 * next page only after the client acks the last one, so a 100k backlog costs one page of
 * memory), says `queue.empty`, then pushes live commits in sequence order. A live commit that
 * does not follow the last one seen (another node's, or one that raced a page) sends it back to
 * the database, so order and completeness never depend on timing.
 */
export class Subscription {
  readonly channelText: string;
  readonly #channel: Uint8Array;
  readonly #sink: Sink;
  readonly #db: Db;
  readonly #heads: HeadSource;
  readonly #local: LocalCommits | undefined;
  #lastSeen: number;
  #live = false;
  #fetching = false;
  #waitAck: number | undefined;
  #closed = false;

  constructor(db: Db, heads: HeadSource, sink: Sink, channelText: string, after: number, local?: LocalCommits) {
    this.#db = db;
    this.#heads = heads;
    this.#local = local;
    this.#sink = sink;
    this.channelText = channelText;
    this.#channel = fromBase64Url(channelText)!;
    this.#lastSeen = after;
  }

  /** Starts catching up. */
  start(): void {
    void this.#catchUp();
  }

  /** Stops all delivery. */
  close(): void {
    this.#closed = true;
  }

  /** A commit on this node, with its `deliver` frame serialised once for every recipient. */
  committed(c: Committed, frame: DeliverFrame): void {
    if (!this.#live || this.#fetching || this.#closed || c.seq <= this.#lastSeen) return;
    if (c.seq !== this.#lastSeen + 1) {
      void this.#catchUp();
      return;
    }
    this.#lastSeen = c.seq;
    const header = c.headers[this.#sink.memberText];
    if (header === undefined) return;
    this.#sink.sendText('deliver', frame.for(header));
  }

  /** Another node advanced the channel to `seq`. */
  advanced(seq: number): void {
    if (!this.#live || this.#fetching || this.#closed || seq <= this.#lastSeen) return;
    // Our own commit, notified before its reply came back: it is pushed from memory when it
    // lands; only what is still missing then is read from the database.
    const pending = this.#local?.localCommit(this.channelText, seq);
    if (pending !== undefined) {
      void pending.then(() => this.advanced(seq));
      return;
    }
    void this.#catchUp();
  }

  /** The client acknowledged up to `seq`. */
  acked(seq: number): void {
    if (this.#waitAck !== undefined && seq >= this.#waitAck) {
      this.#waitAck = undefined;
      void this.#catchUp();
    }
  }

  async #catchUp(): Promise<void> {
    if (this.#fetching || this.#closed) return;
    this.#live = false;
    this.#fetching = true;
    try {
      for (;;) {
        const rows = await this.#page();
        if (this.#closed) return;
        let lastDelivered: number | undefined;
        for (const row of rows) {
          const seq = Number(row.seq);
          this.#lastSeen = seq;
          if (row.header === null) continue;
          lastDelivered = seq;
          const ok = this.#sink.send({
            type: 'deliver',
            channel: this.channelText,
            seq,
            from: toBase64Url(row.sender_key),
            header: row.header,
            body: row.body,
            commitment: toBase64Url(row.commitment),
            receivedAt: Number(row.received_at),
            chain: toBase64Url(row.chain),
          });
          if (!ok) return;
        }
        if (rows.length === LIMITS.resumePageSize) {
          if (lastDelivered !== undefined) {
            this.#waitAck = lastDelivered; // resume when the client has taken this page
            return;
          }
          continue;
        }
        if (this.#heads.head(this.channelText) > this.#lastSeen) continue;
        this.#live = true;
        this.#sink.send({ type: 'queue.empty', channel: this.channelText, seq: this.#lastSeen });
        return;
      }
    } catch {
      // Database unavailable: cut the connection so the client resumes later; nothing was skipped.
      this.#closed = true;
      this.#sink.abort();
    } finally {
      this.#fetching = false;
    }
  }

  #page() {
    return this.#db.kysely
      .selectFrom('messages')
      .select(['seq', 'sender_key', 'body', 'commitment', 'received_at', 'chain', sql<string | null>`headers ->> ${this.#sink.memberText}`.as('header')])
      .where('channel_id', '=', this.#channel)
      .where('seq', '>', String(this.#lastSeen))
      .orderBy('seq')
      .limit(LIMITS.resumePageSize)
      .execute();
  }
}
