import type pg from 'pg';
import { nextReceiptChain } from '@backchannel/client-sdk';
import { BackchannelError, toBase64Url } from '@backchannel/client-sdk/protocol';
import { refusesSend, type AdmissionLimits } from '../admission.js';
import { byteaArray, int8Array, jsonbArray, textArray } from './pg-arrays.js';

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
  /** When it was queued (performance.now()). */
  readonly at: number;
  readonly resolve: (c: Committed) => void;
  readonly reject: (e: Error) => void;
}

/** A channel's newest sequence and receipt-chain value. */
interface Head {
  readonly seq: number;
  readonly chain: Uint8Array;
}

/** What one batch writes: its fresh messages, and each advanced channel's head before and after. */
interface Plan {
  readonly out: (Committed | Error)[];
  readonly fresh: { readonly sub: Submission; readonly c: Committed }[];
  readonly moved: Map<string, { readonly id: Uint8Array; readonly prev: Head; next: Head }>;
}

/** How a batch committed: in one round trip, or on the locking path (a head was unknown or had moved). */
export type CommitPath = 'fast' | 'locked';

/** Where one batch's time went, in ms: the trace of the commit pipeline. */
export interface BatchTrace {
  readonly size: number;
  readonly path: CommitPath;
  /** How long its oldest send waited in the queue before the batch left. */
  readonly queueMs: number;
  /** The commit's round trips to PostgreSQL (fsync included). */
  readonly commitMs: number;
  /** Handing the results out: listeners (deliveries) and acks, written to the sockets' buffers. */
  readonly handoutMs: number;
}

/** Observes each flushed batch (metrics). */
export type BatchObserver = (trace: BatchTrace) => void;

/** Receives each newly committed message, in sequence order, before any sender is acked. Must not throw. */
export type CommitListener = (c: Committed) => void;

/** NOTIFY channel that tells other relay nodes a channel advanced: payload "channelId:seq …" only. */
export const COMMIT_NOTIFY_CHANNEL = 'bc_commit';

/** Raised by `bc_commit_batch` when a channel head is not what the relay assumed (migration 0004). */
const HEADS_MOVED = 'BC409';
const UNIQUE_VIOLATION = '23505';

// Locks, checks and writes in one statement; see migrations/…T0004-commit-in-one-round-trip.ts.
const COMMIT = {
  name: 'bc_commit_batch',
  text: `select bc_commit_batch($1::bytea[], $2::bigint[], $3::bytea[], $4::text[], $5::jsonb[], $6::text[], $7::bytea[], $8::bigint[], $9::bytea[],
                                $10::bytea[], $11::bigint[], $12::bytea[], $13::bigint[], $14::bytea[], $15::text[])`,
};
const READ_HEADS = {
  name: 'bc_read_heads',
  text: `select id, head_seq, chain from channels where id = any($1::bytea[]) and status = 'open'`,
};
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

const key = (channelText: string, senderText: string, clientMsgId: string): string => `${channelText}|${senderText}|${clientMsgId}`;

/**
 * Persist-before-ack with group commit: every submission that arrives while a batch is in flight
 * goes into the next one, so one fsync covers a whole batch. Sequence numbers are gap-free per
 * channel, across relay nodes too, and follow submission order; retries of a (channel, sender,
 * client message id) resolve to the first commit.
 *
 * A batch normally costs one round trip: sequences and receipt chains are computed from the
 * heads this node committed last, and `bc_commit_batch` writes them only if every head is still
 * what was assumed. A head this node does not know (first use, or another node's NOTIFY said it
 * moved) is read first, without locks: two round trips. When a head turns out to have moved
 * anyway (another node committed meanwhile, the channel closed) or a message id was retried, the
 * database refuses and writes nothing, and the batch takes the locking path: lock the channels,
 * read their heads and any earlier commits of the same ids, then write.
 */
export class MessageLog {
  readonly #pool: pg.Pool;
  readonly #maxBatch: number;
  readonly #observe: BatchObserver | undefined;
  readonly #onCommit: CommitListener;
  readonly #limits: AdmissionLimits | undefined;
  #queue: Pending[] = [];
  /** A batch is committing (at most one is: each builds on the heads the one before committed). */
  #busy = false;
  #idle: (() => void)[] = [];
  #connection: pg.PoolClient | undefined;
  /** Heads as this node last committed or read them under lock: the base of the next batch. */
  readonly #heads = new Map<string, Head>();
  /** Batches whose listeners have not run yet: the sequences each assigns per channel (first, last), and when it settled. */
  readonly #flights = new Set<{ readonly ranges: Map<string, [number, number]>; readonly settled: Promise<void> }>();

  /** With `limits`, a submission that finds the queue past them is refused `overloaded` (see admission.ts). */
  constructor(pool: pg.Pool, onCommit: CommitListener, options: { maxBatch?: number; observe?: BatchObserver; limits?: AdmissionLimits } = {}) {
    this.#pool = pool;
    this.#onCommit = onCommit;
    this.#maxBatch = options.maxBatch ?? 512;
    this.#observe = options.observe;
    this.#limits = options.limits;
  }

  /** Submissions waiting for a batch (not counting the one committing). */
  get waiting(): number {
    return this.#queue.length;
  }

  /** Most submissions one batch takes. */
  get batchLimit(): number {
    return this.#maxBatch;
  }

  /** How long the oldest waiting submission has waited, in ms (0 when none waits). */
  oldestWaitMs(now: number): number {
    const oldest = this.#queue[0];
    return oldest === undefined ? 0 : now - oldest.at;
  }

  /**
   * Resolves once the message is durably committed (or was already). Rejects `overloaded` when
   * admission refuses it: checked here, where it joins the queue, so that sends whose handlers
   * all passed the early checks in one turn still cannot queue past the bounds.
   */
  submit(sub: Submission): Promise<Committed> {
    if (this.#limits !== undefined && refusesSend(this, this.#limits)) return Promise.reject(new BackchannelError('overloaded', 'the relay is at capacity; retry'));
    return new Promise((resolve, reject) => {
      this.#queue.push({ sub, at: performance.now(), resolve, reject });
      this.#pump();
    });
  }

  /**
   * When `seq` of `channelText` is assigned by a batch of this node whose listeners have not run
   * yet: a promise that settles once they have (or the batch failed). Nodes are notified of their
   * own commits too, often before the commit's reply arrives; a subscription that waits for this
   * pushes the message from memory instead of reading it back from the database. Another node's
   * sequences are never in our ranges (a batch whose heads moved writes nothing).
   */
  localCommit(channelText: string, seq: number): Promise<void> | undefined {
    for (const f of this.#flights) {
      const range = f.ranges.get(channelText);
      if (range !== undefined && range[0] <= seq && seq <= range[1]) return f.settled;
    }
    return undefined;
  }

  /** A channel reached `seq` (a NOTIFY, perhaps from another node): a head behind it is stale. */
  advanced(channelText: string, seq: number): void {
    const head = this.#heads.get(channelText);
    if (head !== undefined && head.seq < seq && this.localCommit(channelText, seq) === undefined) this.#heads.delete(channelText);
  }

  /** Forgets every head (notifications may have been missed). */
  forgetHeads(): void {
    this.#heads.clear();
  }

  /** Resolves when nothing is queued, committing or being handed out (graceful shutdown). */
  drained(): Promise<void> {
    if (this.#idleNow()) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** Nothing is queued, committing or being handed out. */
  #idleNow(): boolean {
    return !this.#busy && this.#flights.size === 0 && this.#queue.length === 0;
  }

  /** Starts a batch with what is queued, unless one is committing. */
  #pump(): void {
    if (this.#busy || this.#queue.length === 0) return;
    this.#busy = true;
    void this.#flush(this.#queue.splice(0, this.#maxBatch));
  }

  /**
   * Commits a batch, then starts the next one before handing this one's results out: the next
   * batch is on its way to PostgreSQL while the acks and deliveries of this one are written.
   */
  async #flush(batch: Pending[]): Promise<void> {
    const started = performance.now();
    const queueMs = started - batch[0]!.at;
    let settle = (): void => undefined;
    const settled = new Promise<void>((resolve) => (settle = resolve));
    const flight = { ranges: new Map<string, [number, number]>(), settled };
    this.#flights.add(flight);
    const subs = batch.map((p) => p.sub);
    let results: (Committed | Error)[] | undefined;
    let failure: Error | undefined;
    const path: { taken: CommitPath } = { taken: 'fast' };
    try {
      results = await this.#commit(subs, flight.ranges, path);
    } catch (cause) {
      // The commit may or may not have landed: re-read these heads under lock next time.
      for (const s of subs) this.#heads.delete(s.channelText);
      failure = new BackchannelError('unavailable', 'the relay could not store the message; retry', { cause });
    }
    const committedAt = performance.now();
    this.#busy = false;
    this.#pump();
    try {
      if (results !== undefined) for (const r of results) if (!(r instanceof Error) && !r.duplicate) this.#onCommit(r);
      batch.forEach((p, i) => {
        const r = failure ?? results?.[i];
        if (r instanceof Error) p.reject(r);
        else if (r !== undefined) p.resolve(r);
      });
    } finally {
      this.#flights.delete(flight);
      settle();
      this.#observe?.({ size: batch.length, path: path.taken, queueMs, commitMs: committedAt - started, handoutMs: performance.now() - committedAt });
      if (this.#idleNow()) for (const resolve of this.#idle.splice(0)) resolve();
    }
  }

  /**
   * Commits one batch: in one round trip if every head is known and still current; in two if
   * some are not known (read first, without locks: the commit checks them anyway).
   */
  async #commit(subs: Submission[], ranges: Map<string, [number, number]>, path: { taken: CommitPath }): Promise<(Committed | Error)[]> {
    const client = await this.#client();
    try {
      const unknown = new Map<string, Uint8Array>();
      for (const s of subs) if (!this.#heads.has(s.channelText)) unknown.set(s.channelText, s.channel);
      if (unknown.size > 0) {
        const read = await client.query<HeadRow>({ ...READ_HEADS, values: [byteaArray([...unknown.values()])] });
        for (const row of read.rows) this.#heads.set(toBase64Url(row.id), headOf(row));
      }
      if (subs.every((s) => this.#heads.has(s.channelText))) {
        const plan = assign(subs, this.#heads, new Map(), ranges);
        await client.query({ ...COMMIT, values: commitValues(plan) });
        for (const [channelText, m] of plan.moved) this.#heads.set(channelText, m.next);
        return plan.out;
      }
    } catch (err) {
      if (!isConflict(err)) {
        this.#dropClient(err);
        throw err;
      }
      for (const s of subs) this.#heads.delete(s.channelText);
      ranges.clear();
    }
    path.taken = 'locked';
    return this.#commitLocked(subs, ranges);
  }

  /** The connection batches commit on, kept out of the pool between batches. */
  async #client(): Promise<pg.PoolClient> {
    this.#connection ??= await this.#pool.connect();
    return this.#connection;
  }

  /** Gives a failed connection back to the pool to be destroyed; the next batch takes a new one. */
  #dropClient(err: unknown): void {
    this.#connection?.release(err instanceof Error ? err : true);
    this.#connection = undefined;
  }

  /** Returns the commit connection to the pool (shutdown, after `drained`). */
  release(): void {
    this.#connection?.release();
    this.#connection = undefined;
  }

  /** The locking path: heads and earlier commits of the same ids read under the channels' row locks. */
  async #commitLocked(subs: Submission[], ranges: Map<string, [number, number]>): Promise<(Committed | Error)[]> {
    const client = await this.#client();
    try {
      await client.query('begin');
      const channelIds = [...new Map(subs.map((s) => [s.channelText, s.channel])).values()];
      const locked = await client.query<HeadRow>({ ...LOCK, values: [channelIds] });
      const heads = new Map<string, Head>();
      for (const row of locked.rows) heads.set(toBase64Url(row.id), headOf(row));
      const existing = await client.query<ExistingRow>({
        ...EXISTING,
        values: [subs.map((s) => s.channel), subs.map((s) => s.sender), subs.map((s) => s.clientMsgId)],
      });
      const known = new Map<string, Committed>();
      for (const row of existing.rows) {
        const c = fromExisting(row);
        known.set(key(c.channelText, c.senderText, c.clientMsgId), c);
      }
      const plan = assign(subs, heads, known, ranges);
      if (plan.fresh.length > 0) await client.query({ ...COMMIT, values: commitValues(plan) });
      await client.query('commit');
      for (const s of subs) this.#heads.delete(s.channelText);
      for (const [channelText, head] of heads) this.#heads.set(channelText, head);
      for (const [channelText, m] of plan.moved) this.#heads.set(channelText, m.next);
      return plan.out;
    } catch (err) {
      await client.query('rollback').catch(() => undefined);
      this.#dropClient(err);
      throw err;
    }
  }
}

/**
 * Assigns each fresh submission the next sequence of its channel after `heads` and chains its
 * receipt; a submission already in `known` resolves to that commit, one for a channel missing
 * from `heads` (not open) to `channel_closed`. Fills `ranges` with each channel's new sequences.
 */
function assign(subs: Submission[], heads: ReadonlyMap<string, Head>, known: Map<string, Committed>, ranges: Map<string, [number, number]>): Plan {
  const receivedAt = Date.now();
  const out: (Committed | Error)[] = [];
  const fresh: Plan['fresh'] = [];
  const moved: Plan['moved'] = new Map();
  for (const s of subs) {
    const k = key(s.channelText, s.senderText, s.clientMsgId);
    const prior = known.get(k);
    if (prior !== undefined) {
      out.push({ ...prior, duplicate: true });
      continue;
    }
    const head = moved.get(s.channelText)?.next ?? heads.get(s.channelText);
    if (head === undefined) {
      out.push(new BackchannelError('channel_closed', 'the channel is not open'));
      continue;
    }
    const seq = head.seq + 1;
    const next = { seq, chain: nextReceiptChain(head.chain, seq, s.commitment, receivedAt) };
    const m = moved.get(s.channelText);
    if (m === undefined) moved.set(s.channelText, { id: s.channel, prev: head, next });
    else m.next = next;
    const range = ranges.get(s.channelText);
    if (range === undefined) ranges.set(s.channelText, [seq, seq]);
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
      chain: next.chain,
      duplicate: false,
    };
    known.set(k, c);
    fresh.push({ sub: s, c });
    out.push(c);
  }
  return { out, fresh, moved };
}

/** The parameters of `bc_commit_batch` for a plan, as binary arrays. */
function commitValues({ fresh, moved }: Plan): Buffer[] {
  const heads = [...moved.values()];
  // Only channel id and sequence cross to other nodes; they read the rest from the database.
  // A NOTIFY payload must stay under 8000 bytes: 200 entries of ~32 bytes each.
  const entries = [...moved].map(([channelText, m]) => `${channelText}:${m.next.seq}`);
  const notices: string[] = [];
  for (let i = 0; i < entries.length; i += 200) notices.push(entries.slice(i, i + 200).join(' '));
  return [
    byteaArray(fresh.map((f) => f.sub.channel)),
    int8Array(fresh.map((f) => f.c.seq)),
    byteaArray(fresh.map((f) => f.sub.sender)),
    textArray(fresh.map((f) => f.sub.clientMsgId)),
    jsonbArray(fresh.map((f) => JSON.stringify(f.sub.headers))),
    textArray(fresh.map((f) => f.sub.body)),
    byteaArray(fresh.map((f) => f.c.commitment)),
    int8Array(fresh.map((f) => f.c.receivedAt)),
    byteaArray(fresh.map((f) => f.c.chain)),
    byteaArray(heads.map((h) => h.id)),
    int8Array(heads.map((h) => h.prev.seq)),
    byteaArray(heads.map((h) => h.prev.chain)),
    int8Array(heads.map((h) => h.next.seq)),
    byteaArray(heads.map((h) => h.next.chain)),
    textArray(notices),
  ];
}

/** A fast commit that found a head moved or a message id already used: nothing was written. */
function isConflict(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === HEADS_MOVED || code === UNIQUE_VIOLATION;
}

interface HeadRow {
  id: Uint8Array;
  head_seq: string;
  chain: Uint8Array;
}

function headOf(row: HeadRow): Head {
  return { seq: Number(row.head_seq), chain: new Uint8Array(row.chain) };
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
