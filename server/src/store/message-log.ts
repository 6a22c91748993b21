import type pg from 'pg';
import { nextReceiptChain } from '@backchannel/client-sdk';
import { BackchannelError, toBase64Url } from '@backchannel/client-sdk/protocol';

/** A message the relay has validated and is about to commit. */
export interface Submission {
  readonly channel: Uint8Array;
  readonly channelText: string;
  readonly sender: Uint8Array;
  readonly senderText: string;
  readonly clientMsgId: string;
  readonly headers: Record<string, string>;
  readonly body: string;
  readonly commitment: Uint8Array;
}

/** A message as committed: what the ack and the deliveries carry. */
export interface Committed {
  readonly channelText: string;
  readonly senderText: string;
  readonly clientMsgId: string;
  readonly seq: number;
  readonly receivedAt: number;
  readonly chain: Uint8Array;
  readonly duplicate: boolean;
  readonly headers: Record<string, string>;
  readonly body: string;
  readonly commitment: Uint8Array;
}

interface Pending {
  readonly sub: Submission;
  readonly resolve: (c: Committed) => void;
  readonly reject: (e: Error) => void;
}

/** Observes each flushed batch (metrics). */
export type BatchObserver = (size: number, ms: number) => void;

/** Receives each newly committed message, in sequence order, before any sender is acked. */
export type CommitListener = (c: Committed) => void;

/** NOTIFY channel that tells other relay nodes a channel advanced: payload "channelId:seq …" only. */
export const COMMIT_NOTIFY_CHANNEL = 'bc_commit';

const LOCK = {
  name: 'bc_lock_channels',
  text: `select id, head_seq, chain from channels where id = any($1::bytea[]) and status = 'open' order by id for update`,
};
const EXISTING = {
  name: 'bc_existing_messages',
  text: `select m.channel_id, m.sender_key, m.client_msg_id, m.seq, m.received_at, m.chain, m.headers, m.body, m.commitment
           from messages m
           join unnest($1::bytea[], $2::bytea[], $3::text[]) as k(c, s, i)
             on m.channel_id = k.c and m.sender_key = k.s and m.client_msg_id = k.i`,
};
// Messages, receipts, channel heads and the NOTIFY to other nodes in one statement (one round
// trip): data-modifying CTEs all run, whether or not the final select reads them.
const WRITE = {
  name: 'bc_write_batch',
  text: `with m as (
           insert into messages (channel_id, seq, sender_key, client_msg_id, headers, body, commitment, received_at, chain)
           select * from unnest($1::bytea[], $2::bigint[], $3::bytea[], $4::text[], $5::jsonb[], $6::text[], $7::bytea[], $8::bigint[], $9::bytea[])
         ), r as (
           insert into receipts (channel_id, seq, commitment, received_at, chain)
           select * from unnest($1::bytea[], $2::bigint[], $7::bytea[], $8::bigint[], $9::bytea[])
         ), a as (
           update channels c set head_seq = v.h, chain = v.ch
             from unnest($10::bytea[], $11::bigint[], $12::bytea[]) as v(id, h, ch) where c.id = v.id
         )
         select pg_notify('${COMMIT_NOTIFY_CHANNEL}', p) from unnest($13::text[]) as p`,
};

const key = (channelText: string, senderText: string, clientMsgId: string): string => `${channelText}|${senderText}|${clientMsgId}`;

/**
 * Persist-before-ack with group commit: every submission waiting while a transaction is in
 * flight goes into the next one, so one fsync covers a whole batch. Sequence numbers are
 * assigned under a row lock on the channel, so they are gap-free across relay nodes; retries
 * of a (channel, sender, client message id) resolve to the first commit.
 */
export class MessageLog {
  readonly #pool: pg.Pool;
  readonly #maxBatch: number;
  readonly #observe: BatchObserver | undefined;
  readonly #onCommit: CommitListener;
  readonly #concurrency: number;
  #queue: Pending[] = [];
  #active = 0;
  /** Settles once the newest batch holds its channel locks (or gave up): the next one locks after it. */
  #lastLocked: Promise<void> = Promise.resolve();
  #idle: (() => void)[] = [];
  /** Commits in flight: the sequences each assigns per channel (first, last), and when it has settled. */
  readonly #inflight = new Set<{ readonly heads: Map<string, [number, number]>; readonly settled: Promise<void> }>();

  constructor(pool: pg.Pool, onCommit: CommitListener, options: { maxBatch?: number; concurrency?: number; observe?: BatchObserver } = {}) {
    this.#pool = pool;
    this.#onCommit = onCommit;
    this.#maxBatch = options.maxBatch ?? 512;
    this.#concurrency = options.concurrency ?? 2;
    this.#observe = options.observe;
  }

  /** Resolves once the message is durably committed (or was already). */
  submit(sub: Submission): Promise<Committed> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ sub, resolve, reject });
      this.#pump();
    });
  }

  /**
   * When `seq` of `channelText` is assigned by a commit of this node still in flight: a promise
   * that settles once that commit's listeners have run (or it failed). Nodes are notified of
   * their own commits too, often before the commit's reply arrives; a subscription that waits
   * for this pushes the message from memory instead of reading it back from the database.
   * Another node's sequences are never in our range (they were committed before we locked).
   */
  localCommit(channelText: string, seq: number): Promise<void> | undefined {
    for (const f of this.#inflight) {
      const range = f.heads.get(channelText);
      if (range !== undefined && range[0] <= seq && seq <= range[1]) return f.settled;
    }
    return undefined;
  }

  /** Resolves when nothing is queued or in flight (graceful shutdown). */
  drained(): Promise<void> {
    if (this.#active === 0 && this.#queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /**
   * Starts a batch with what is queued while fewer than `concurrency` are in flight. Batches
   * overlap their round trips but take their channel locks one after the other, so on a shared
   * channel a later batch waits for the earlier one's commit: sequences stay gap-free and follow
   * submission order.
   */
  #pump(): void {
    while (this.#active < this.#concurrency && this.#queue.length > 0) {
      const batch = this.#queue.splice(0, this.#maxBatch);
      this.#active++;
      void this.#flush(batch).finally(() => {
        this.#active--;
        this.#pump();
        if (this.#active === 0 && this.#queue.length === 0) for (const resolve of this.#idle.splice(0)) resolve();
      });
    }
  }

  async #flush(batch: Pending[]): Promise<void> {
    const started = performance.now();
    let settle = (): void => undefined;
    const settled = new Promise<void>((resolve) => (settle = resolve));
    const flight = { heads: new Map<string, [number, number]>(), settled };
    this.#inflight.add(flight);
    const previous = this.#lastLocked;
    let locked = (): void => undefined;
    this.#lastLocked = new Promise<void>((resolve) => (locked = resolve));
    try {
      const results = await this.#commit(batch.map((p) => p.sub), flight.heads, previous, locked);
      for (const r of results) if (!(r instanceof Error) && !r.duplicate) this.#onCommit(r);
      batch.forEach((p, i) => {
        const r = results[i];
        if (r instanceof Error) p.reject(r);
        else if (r !== undefined) p.resolve(r);
      });
    } catch (cause) {
      const err = new BackchannelError('unavailable', 'the relay could not store the message; retry', { cause });
      for (const p of batch) p.reject(err);
    } finally {
      locked();
      this.#inflight.delete(flight);
      settle();
    }
    this.#observe?.(batch.length, performance.now() - started);
  }

  /**
   * Commits one batch: locks its channels once `previous` (the batch before) holds its locks,
   * then calls `locked`; fills `assigned` with each channel's new sequences (first, last).
   */
  async #commit(subs: Submission[], assigned: Map<string, [number, number]>, previous: Promise<void>, locked: () => void): Promise<(Committed | Error)[]> {
    const client = await this.#pool.connect();
    let released = false;
    try {
      await client.query('begin');
      const channelIds = unique(subs.map((s) => s.channel), (c) => toBase64Url(c));
      await previous;
      const lockedRows = await client.query<{ id: Uint8Array; head_seq: string; chain: Uint8Array }>({ ...LOCK, values: [channelIds] });
      locked();
      const heads = new Map<string, { seq: number; chain: Uint8Array }>();
      for (const row of lockedRows.rows) heads.set(toBase64Url(row.id), { seq: Number(row.head_seq), chain: new Uint8Array(row.chain) });

      const existing = await client.query<ExistingRow>({
        ...EXISTING,
        values: [subs.map((s) => s.channel), subs.map((s) => s.sender), subs.map((s) => s.clientMsgId)],
      });
      const known = new Map<string, Committed>();
      for (const row of existing.rows) {
        const c = fromExisting(row);
        known.set(key(c.channelText, c.senderText, c.clientMsgId), c);
      }

      const receivedAt = Date.now();
      const out: (Committed | Error)[] = [];
      const fresh: { sub: Submission; c: Committed }[] = [];
      const advanced = new Map<string, { id: Uint8Array; seq: number; chain: Uint8Array }>();
      for (const s of subs) {
        const k = key(s.channelText, s.senderText, s.clientMsgId);
        const prior = known.get(k);
        if (prior !== undefined) {
          out.push({ ...prior, duplicate: true });
          continue;
        }
        const head = heads.get(s.channelText);
        if (head === undefined) {
          out.push(new BackchannelError('channel_closed', 'the channel is not open'));
          continue;
        }
        const seq = head.seq + 1;
        const chain = nextReceiptChain(head.chain, seq, s.commitment, receivedAt);
        heads.set(s.channelText, { seq, chain });
        advanced.set(s.channelText, { id: s.channel, seq, chain });
        const range = assigned.get(s.channelText);
        if (range === undefined) assigned.set(s.channelText, [seq, seq]);
        else range[1] = seq;
        const c: Committed = {
          channelText: s.channelText,
          senderText: s.senderText,
          clientMsgId: s.clientMsgId,
          headers: s.headers,
          body: s.body,
          commitment: s.commitment,
          seq,
          receivedAt,
          chain,
          duplicate: false,
        };
        known.set(k, c);
        fresh.push({ sub: s, c });
        out.push(c);
      }

      if (fresh.length > 0) {
        const channels = fresh.map((f) => f.sub.channel);
        const seqs = fresh.map((f) => f.c.seq);
        const commitments = fresh.map((f) => f.c.commitment);
        const times = fresh.map(() => receivedAt);
        const chains = fresh.map((f) => f.c.chain);
        const moved = [...advanced.values()];
        // Only channel id and sequence cross to other nodes; they read the rest from the database.
        // A NOTIFY payload must stay under 8000 bytes: 200 entries of ~32 bytes each.
        const entries = [...advanced].map(([c, h]) => `${c}:${h.seq}`);
        const payloads: string[] = [];
        for (let i = 0; i < entries.length; i += 200) payloads.push(entries.slice(i, i + 200).join(' '));
        await client.query({
          ...WRITE,
          values: [
            channels,
            seqs,
            fresh.map((f) => f.sub.sender),
            fresh.map((f) => f.sub.clientMsgId),
            fresh.map((f) => JSON.stringify(f.sub.headers)),
            fresh.map((f) => f.sub.body),
            commitments,
            times,
            chains,
            moved.map((h) => h.id),
            moved.map((h) => h.seq),
            moved.map((h) => h.chain),
            payloads,
          ],
        });
      }
      await client.query('commit');
      return out;
    } catch (err) {
      await client.query('rollback').catch(() => undefined);
      client.release(err instanceof Error ? err : true);
      released = true;
      throw err;
    } finally {
      if (!released) client.release();
    }
  }
}

interface ExistingRow {
  channel_id: Uint8Array;
  sender_key: Uint8Array;
  client_msg_id: string;
  seq: string;
  received_at: string;
  chain: Uint8Array;
  headers: Record<string, string>;
  body: string;
  commitment: Uint8Array;
}

function fromExisting(row: ExistingRow): Committed {
  return {
    channelText: toBase64Url(row.channel_id),
    senderText: toBase64Url(row.sender_key),
    clientMsgId: row.client_msg_id,
    seq: Number(row.seq),
    receivedAt: Number(row.received_at),
    chain: new Uint8Array(row.chain),
    duplicate: true,
    headers: row.headers,
    body: row.body,
    commitment: new Uint8Array(row.commitment),
  };
}

function unique<T>(items: T[], id: (t: T) => string): T[] {
  const seen = new Map<string, T>();
  for (const item of items) if (!seen.has(id(item))) seen.set(id(item), item);
  return [...seen.values()];
}
