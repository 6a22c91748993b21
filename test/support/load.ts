import pg from 'pg';
import { BackchannelError, type RelayConnection } from '@backchannel/client-sdk';
import { fromBase64Url, toBase64Url, type RelayFrameOf } from '@backchannel/client-sdk/protocol';
import type { OpenChannel, RawMember } from './members.js';

/** Error codes after which a sender tries the same message again (same client message id). */
const RETRYABLE = new Set(['unavailable', 'internal', 'timeout', 'closed']);

/** Options of {@link LoadDriver}. */
export interface LoadOptions {
  /** Messages a second each sender aims for (open loop, up to `window` in flight). */
  readonly ratePerSender: number;
  /** Sends one sender keeps in flight at most (closed loop once reached). */
  readonly window: number;
  /** Body size in bytes (opaque; no encryption is needed to test the relay's reliability). */
  readonly bodyBytes?: number;
}

/** One acknowledged or pending message as its sender sees it. */
interface Outgoing {
  readonly counter: number;
  readonly firstSentAt: number;
  /** Highest sequence this sender had been acked for when it first sent this one. */
  readonly ackedBefore: number;
  seq?: number;
  ackedAt?: number;
  attempts: number;
}

/** A party taking part in the load: sender and recipient on one connection. */
export interface LoadParty {
  readonly name: string;
  readonly channel: string;
  readonly member: RawMember;
  /** Other parties of its channel (its recipients). */
  readonly peers: string[];
  conn: RelayConnection;
  readonly sent: Map<number, Outgoing>;
  /** sender key → (counter → sequence) received, in arrival order. */
  readonly received: Map<string, Map<number, number>>;
  /** The last sequence handed to the application (its resume point). */
  lastSeq: number;
  /** If false, this party only receives. */
  sending: boolean;
  /** If false, this party does not subscribe. */
  receiving: boolean;
  ackedMax: number;
}

/** Figures of a run. */
export interface LoadReport {
  readonly sent: number;
  readonly acked: number;
  readonly delivered: number;
  /** Sends the application repeated after an error answer (the connection's own re-sends are not counted). */
  readonly retries: number;
  readonly durationMs: number;
  readonly ackedPerSec: number;
  readonly ackLatencyMs: Percentiles;
  readonly deliverLatencyMs: Percentiles;
  readonly errors: Record<string, number>;
}

/** Latency percentiles in milliseconds. */
export interface Percentiles {
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

/** Everything a run got wrong; all empty when the relay kept its promises. */
export interface LoadViolations {
  /** Acked messages some recipient never got: `party <- sender#counter`. */
  readonly missing: string[];
  /** Messages (or sequences) handed to an application twice. */
  readonly duplicates: string[];
  /** A sender's later message ordered before one acked before it was sent, or deliveries out of sequence. */
  readonly order: string[];
  /** A delivery whose sequence differs from the one its sender was acked with. */
  readonly mismatched: string[];
  /** Errors no sender should see (anything but transient unavailability). */
  readonly fatal: string[];
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function percentiles(values: number[]): Percentiles {
  if (values.length === 0) return { p50: 0, p99: 0, max: 0 };
  const s = [...values].sort((a, b) => a - b);
  const at = (q: number): number => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? 0;
  return { p50: Math.round(at(0.5)), p99: Math.round(at(0.99)), max: Math.round(s[s.length - 1] ?? 0) };
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/**
 * A small load driver over real {@link RelayConnection}s: every party of every channel sends
 * open-loop at a target rate (closed-loop once `window` sends are in flight) to all its peers,
 * retries a send with the same client message id until it is acked, and receives the others'
 * messages. It records what each sender was acked and what each application was handed, and
 * checks them against each other: nothing acked missing, nothing twice, per-sender order kept.
 * Header bytes carry `counter:sentAt` in the clear: these tests exercise the relay, not the crypto.
 */
export class LoadDriver {
  readonly parties: LoadParty[] = [];
  readonly #options: Required<LoadOptions>;
  readonly #byKey = new Map<string, LoadParty>();
  readonly #body: string;
  readonly #ackLatency: number[] = [];
  readonly #deliverLatency: number[] = [];
  readonly #errors: Record<string, number> = {};
  readonly #fatal: string[] = [];
  readonly #duplicates: string[] = [];
  readonly #order: string[] = [];
  #running = false;
  #workers: Promise<void>[] = [];
  #startedAt = 0;
  #stoppedAt = 0;
  #retries = 0;
  #delivered = 0;

  /** @param connect makes a fresh connection for a member (tests may route it through a proxy) */
  constructor(channels: OpenChannel[], options: LoadOptions, connect?: (m: RawMember) => RelayConnection) {
    this.#options = { bodyBytes: 256, ...options };
    this.#body = toBase64Url(new Uint8Array(this.#options.bodyBytes).fill(0x5a));
    channels.forEach((ch, ci) => {
      ch.parties.forEach((m, pi) => {
        const party: LoadParty = {
          name: `c${ci}p${pi}`,
          channel: ch.channel,
          member: m,
          peers: ch.parties.filter((o) => o !== m).map((o) => o.key),
          conn: connect?.(m) ?? m.conn,
          sent: new Map(),
          received: new Map(),
          lastSeq: 0,
          sending: true,
          receiving: true,
          ackedMax: 0,
        };
        this.parties.push(party);
        this.#byKey.set(m.key, party);
      });
    });
  }

  /** Connects every party and subscribes the receiving ones. */
  async connect(): Promise<void> {
    await Promise.all(this.parties.map((p) => p.conn.connect()));
    for (const p of this.parties) if (p.receiving) this.subscribe(p);
  }

  /** (Re)subscribes a party on its current connection, resuming after its last processed sequence. */
  subscribe(p: LoadParty): void {
    p.conn.subscribe(p.channel, { after: () => p.lastSeq, deliver: async (f) => this.#deliver(p, f) });
  }

  /** Starts sending. */
  start(): void {
    this.#running = true;
    this.#startedAt = performance.now();
    for (const p of this.parties) {
      if (!p.sending) continue;
      let next = 0;
      const interval = 1000 / this.#options.ratePerSender;
      const worker = async (): Promise<void> => {
        while (this.#running) {
          const counter = next++;
          const due = this.#startedAt + counter * interval;
          const wait = due - performance.now();
          if (wait > 0) await sleep(wait);
          if (!this.#running) return;
          await this.#send(p, counter);
        }
      };
      for (let w = 0; w < this.#options.window; w++) this.#workers.push(worker());
    }
  }

  /** Stops creating messages; resolves when every message created so far is acked. */
  async stop(): Promise<void> {
    this.#running = false;
    await Promise.all(this.#workers);
    this.#stoppedAt = performance.now();
  }

  /** Acks that arrived in [from, to] (epoch milliseconds). */
  ackedBetween(from: number, to: number): number {
    let n = 0;
    for (const p of this.parties) for (const o of p.sent.values()) if (o.ackedAt !== undefined && o.ackedAt >= from && o.ackedAt <= to) n++;
    return n;
  }

  /** The newest ack's time (epoch milliseconds), or 0. */
  lastAckAt(): number {
    let t = 0;
    for (const p of this.parties) for (const o of p.sent.values()) if (o.ackedAt !== undefined && o.ackedAt > t) t = o.ackedAt;
    return t;
  }

  /** Acked messages not yet delivered to every recipient (receiving parties only). */
  outstanding(): number {
    let n = 0;
    for (const s of this.parties) {
      for (const peerKey of s.peers) {
        const r = this.#byKey.get(peerKey);
        if (r === undefined || !r.receiving) continue;
        const got = r.received.get(s.member.key)?.size ?? 0;
        let acked = 0;
        for (const o of s.sent.values()) if (o.seq !== undefined) acked++;
        n += Math.max(0, acked - got);
      }
    }
    return n;
  }

  /** Waits until every acked message reached every receiving recipient, or the timeout. */
  async drained(timeoutMs: number): Promise<boolean> {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      if (this.outstanding() === 0) return true;
      await sleep(100);
    }
    return this.outstanding() === 0;
  }

  /** Compares what senders were acked with what applications were handed. */
  violations(): LoadViolations {
    const missing: string[] = [];
    const mismatched: string[] = [];
    const order = [...this.#order];
    for (const s of this.parties) {
      for (const o of s.sent.values()) {
        if (o.seq === undefined) continue;
        if (o.seq <= o.ackedBefore) order.push(`${s.name}#${o.counter} got seq ${o.seq}, below ${o.ackedBefore} acked before it was sent`);
      }
      for (const peerKey of s.peers) {
        const r = this.#byKey.get(peerKey);
        if (r === undefined || !r.receiving) continue;
        const got = r.received.get(s.member.key) ?? new Map<number, number>();
        for (const o of s.sent.values()) if (o.seq !== undefined && !got.has(o.counter)) missing.push(`${r.name} <- ${s.name}#${o.counter} (seq ${o.seq})`);
      }
    }
    for (const r of this.parties) {
      for (const [senderKey, counters] of r.received) {
        const s = this.#byKey.get(senderKey);
        if (s === undefined) continue;
        let prevSeq = 0;
        for (const [c, seq] of counters) {
          const acked = s.sent.get(c)?.seq;
          if (acked !== undefined && acked !== seq) mismatched.push(`${r.name} got ${s.name}#${c} as seq ${seq}, acked as ${acked}`);
          if (seq <= prevSeq) order.push(`${r.name} got ${s.name}#${c} (seq ${seq}) after seq ${prevSeq}`);
          prevSeq = seq;
        }
      }
    }
    return { missing, duplicates: [...this.#duplicates], order, mismatched, fatal: [...this.#fatal] };
  }

  /** Figures of the run so far. */
  report(): LoadReport {
    let sent = 0;
    let acked = 0;
    for (const p of this.parties) {
      sent += p.sent.size;
      for (const o of p.sent.values()) if (o.seq !== undefined) acked++;
    }
    const durationMs = Math.round((this.#stoppedAt || performance.now()) - this.#startedAt);
    return {
      sent,
      acked,
      delivered: this.#delivered,
      retries: this.#retries,
      durationMs,
      ackedPerSec: Math.round((acked * 1000) / Math.max(1, durationMs)),
      ackLatencyMs: percentiles(this.#ackLatency),
      deliverLatencyMs: percentiles(this.#deliverLatency),
      errors: { ...this.#errors },
    };
  }

  /** Closes every connection. */
  async close(): Promise<void> {
    await Promise.all(this.parties.map((p) => p.conn.close(AbortSignal.timeout(2_000)).catch(() => undefined)));
  }

  async #send(p: LoadParty, counter: number): Promise<void> {
    const sentAt = Date.now();
    const out: Outgoing = { counter, firstSentAt: sentAt, ackedBefore: p.ackedMax, attempts: 0 };
    p.sent.set(counter, out);
    const header = toBase64Url(enc.encode(`${counter}:${sentAt}`));
    const headers: Record<string, string> = {};
    for (const peer of p.peers) headers[peer] = header;
    const commitment = new Uint8Array(32);
    new DataView(commitment.buffer).setUint32(0, counter);
    const frame = { type: 'send', channel: p.channel, clientMsgId: `${p.name}-${counter}`, headers, body: this.#body, commitment: toBase64Url(commitment) } as const;
    for (;;) {
      out.attempts++;
      if (out.attempts > 1) this.#retries++;
      try {
        // The same frame every time: a retry must be byte-identical to be a true retry.
        const sent = await p.conn.request(frame, { retry: true });
        out.seq = sent.seq;
        out.ackedAt = Date.now();
        p.ackedMax = Math.max(p.ackedMax, sent.seq);
        this.#ackLatency.push(out.ackedAt - sentAt);
        return;
      } catch (err) {
        const code = err instanceof BackchannelError ? err.code : 'exception';
        this.#errors[code] = (this.#errors[code] ?? 0) + 1;
        if (!RETRYABLE.has(code)) {
          this.#fatal.push(`${p.name}#${counter}: ${code} ${err instanceof Error ? err.message : String(err)}`);
          return;
        }
        await sleep(50 + Math.random() * 200);
      }
    }
  }

  async #deliver(r: LoadParty, f: RelayFrameOf<'deliver'>): Promise<void> {
    if (f.seq <= r.lastSeq) this.#duplicates.push(`${r.name} handed seq ${f.seq} again (last ${r.lastSeq})`);
    const text = dec.decode(fromBase64Url(f.header) ?? new Uint8Array());
    const [counterText, sentAtText] = text.split(':');
    const counter = Number(counterText);
    let list = r.received.get(f.from);
    if (list === undefined) r.received.set(f.from, (list = new Map()));
    if (list.has(counter)) this.#duplicates.push(`${r.name} handed ${f.from.slice(0, 6)}#${counter} twice`);
    else list.set(counter, f.seq);
    r.lastSeq = f.seq;
    this.#delivered++;
    this.#deliverLatency.push(Date.now() - Number(sentAtText));
  }
}

/** Gaps, duplicates and counts of one channel's sequences in the database. */
export interface SequenceCheck {
  readonly channel: string;
  readonly rows: number;
  readonly receipts: number;
  readonly head: number;
  /** Sequences missing from 1..head. */
  readonly gaps: number[];
}

/**
 * Reads every channel's message and receipt sequences straight from PostgreSQL: they must be
 * exactly 1..head, where head is the channel's recorded head (the primary key forbids
 * duplicates; this finds gaps and a head that ran ahead of or behind the rows).
 */
export async function checkSequences(databaseUrl: string, channels: string[]): Promise<SequenceCheck[]> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const out: SequenceCheck[] = [];
    for (const channel of channels) {
      const id = Buffer.from(fromBase64Url(channel)!);
      const { rows } = await client.query<{ seq: string }>('select seq from messages where channel_id = $1 order by seq', [id]);
      const receipts = await client.query<{ n: string }>('select count(*) as n from receipts where channel_id = $1', [id]);
      const head = await client.query<{ head_seq: string }>('select head_seq from channels where id = $1', [id]);
      const seqs = rows.map((r) => Number(r.seq));
      const headSeq = Number(head.rows[0]?.head_seq ?? 0);
      const present = new Set(seqs);
      const gaps: number[] = [];
      for (let s = 1; s <= Math.max(headSeq, seqs.length); s++) if (!present.has(s)) gaps.push(s);
      out.push({ channel, rows: seqs.length, receipts: Number(receipts.rows[0]?.n ?? 0), head: headSeq, gaps });
    }
    return out;
  } finally {
    await client.end();
  }
}

/** Row counts of the tables hostile input must never change. */
export async function tableCounts(databaseUrl: string): Promise<Record<string, number>> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const out: Record<string, number> = {};
    for (const table of ['messages', 'receipts', 'members', 'channels', 'invites', 'group_log', 'group_signatures', 'signed_prekeys', 'one_time_prekeys']) {
      const { rows } = await client.query<{ n: string }>(`select count(*) as n from ${table}`);
      out[table] = Number(rows[0]?.n ?? 0);
    }
    return out;
  } finally {
    await client.end();
  }
}
