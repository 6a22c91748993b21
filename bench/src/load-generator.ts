import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import WebSocket from 'ws';
import { authProof, sodiumReady } from '@backchannel/client-sdk';
import { SUBPROTOCOL, authSubprotocol, fromBase64Url } from '@backchannel/client-sdk/protocol';
import type { GroupSpec } from './channels.js';
import { retryDelay } from '../../client-sdk/src/transport/backoff.js';
import { Histogram, type HistogramData } from './histogram.js';

/**
 * A load generator: a child process holding one WebSocket per member of its share of the
 * groups, speaking the wire protocol directly (no SDK: the generator must stay cheap). Every
 * member subscribes to its channel and sends 1 KiB bodies to all the others, either in a closed
 * loop (a fixed window of unacknowledged sends per sender) or in an open loop (a fixed rate,
 * each message timed from when it was due, so a stalled relay cannot hide its queueing).
 * With `retry`, a send refused as `overloaded` is sent again (same client message id) after the
 * SDK's own retry delay (its retry-after hint plus full jitter, capped), as SDK clients do.
 * Ack latency: due time to `sent`. Delivery latency: due time (carried in the first bytes of the
 * body, on the system-wide monotonic clock) to `deliver` at the recipient, in any process.
 */

/** What a generator gets once. */
export interface GeneratorPlan {
  /** Relay base URLs: by `spread`, member i of a group uses urls[i % n], or group g all urls[g % n]. */
  readonly urls: string[];
  readonly spread?: 'members' | 'groups';
  /** Authenticate with the relay's DH challenge (false for the ceiling, which checks nothing). */
  readonly auth: boolean;
  readonly groups: GroupSpec[];
  /** How many members of each group send (the first ones); all of them receive. */
  readonly sendersPerGroup: number;
  readonly bodyBytes: number;
  readonly headerBytes: number;
}

/** One measured run. */
export type RunSpec =
  | { readonly mode: 'closed'; readonly window: number; readonly warmupMs: number; readonly durationMs: number }
  | { readonly mode: 'open'; readonly rate: number; readonly retry?: boolean; readonly warmupMs: number; readonly durationMs: number };

/** What a generator measured over a run's window. */
export interface GeneratorResult {
  readonly seconds: number;
  readonly sent: number;
  readonly acked: number;
  readonly delivered: number;
  /** Open loop: sends not made because the sender already had too many unacknowledged. */
  readonly skipped: number;
  readonly errors: number;
  /** Of the errors: sends answered `overloaded` (each attempt counts). */
  readonly refused: number;
  readonly firstError: string | undefined;
  /** Deliveries whose sequence did not rise over the previous one of their channel (must be 0). */
  readonly outOfOrder: number;
  readonly ack: HistogramData;
  readonly delivery: HistogramData;
}

/** Parent → generator. */
export type GeneratorCommand = { readonly cmd: 'init'; readonly plan: GeneratorPlan } | { readonly cmd: 'run'; readonly spec: RunSpec } | { readonly cmd: 'stop' };

/** Generator → parent. */
export type GeneratorReply =
  | { readonly type: 'ready'; readonly connections: number }
  | { readonly type: 'result'; readonly result: GeneratorResult }
  | { readonly type: 'failed'; readonly message: string };

/** Microseconds on CLOCK_MONOTONIC: the same clock in every process on the machine. */
const nowUs = (): number => Number(process.hrtime.bigint()) / 1000;

/** Most unacknowledged sends per sender in the open loop before it skips (memory bound). */
const OPEN_LOOP_MAX_INFLIGHT = 2_000;
const ACK_EVERY = 32;

/** One send on the wire: when it was first due, its client message id, how often it was refused. */
interface Attempt {
  readonly due: number;
  readonly msgId: string;
  readonly refusals: number;
}

interface Member {
  readonly key: string;
  readonly secret: string;
  readonly index: number;
  readonly url: string;
  readonly channel: string;
  ws: WebSocket | undefined;
  /** `"headers":{…}` of this member's sends, prebuilt. */
  headersJson: string;
  recipients: number;
  inflight: number;
  counter: number;
  lastSeq: number;
  unacked: number;
  /** Unanswered sends by request id. */
  readonly pending: Map<number, Attempt>;
  subscribed: () => void;
}

class Generator {
  readonly #plan: GeneratorPlan;
  readonly #members: Member[] = [];
  readonly #senders: Member[] = [];
  readonly #filler: string;
  readonly #commitment = randomBytes(32).toString('base64url');
  readonly #ackHist = new Histogram();
  readonly #deliverHist = new Histogram();
  readonly #dirty = new Set<Member>();
  #rid = 1;
  #running: RunSpec | undefined;
  #recording = false;
  #sent = 0;
  #acked = 0;
  #delivered = 0;
  #skipped = 0;
  #errors = 0;
  #refused = 0;
  #firstError: string | undefined;
  #outOfOrder = 0;
  #flushScheduled = false;

  constructor(plan: GeneratorPlan) {
    this.#plan = plan;
    // Body = 9 bytes (8-byte due time + 1) + filler, so the timestamp is its first 12 characters.
    this.#filler = randomBytes(plan.bodyBytes - 9).toString('base64url');
    plan.groups.forEach((g, gi) => {
      g.members.forEach((m, i) => {
        const member: Member = {
          key: m.key,
          secret: m.secret,
          index: i,
          // gi is the group's index in this generator's share: with spread 'groups', half per node.
          url: plan.urls[(plan.spread === 'groups' ? gi : i) % plan.urls.length]!,
          channel: g.channel,
          ws: undefined,
          headersJson: '',
          recipients: g.members.length - 1,
          inflight: 0,
          counter: 0,
          lastSeq: 0,
          unacked: 0,
          pending: new Map(),
          subscribed: () => undefined,
        };
        const headers: Record<string, string> = {};
        for (const other of g.members) if (other !== m) headers[other.key] = randomBytes(plan.headerBytes).toString('base64url');
        member.headersJson = JSON.stringify(headers);
        this.#members.push(member);
        if (i < plan.sendersPerGroup) this.#senders.push(member);
      });
    });
  }

  async connectAll(concurrency = 32): Promise<void> {
    await sodiumReady();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < this.#members.length) {
        const m = this.#members[next++]!;
        await this.#connect(m, m.secret);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
  }

  async #connect(m: Member, secret: string): Promise<void> {
    const base = m.url;
    const url = new URL('/v1/ws', base);
    url.protocol = 'ws:';
    // The ceiling forwarder (no authentication) reads the member key from the URL.
    if (!this.#plan.auth) url.searchParams.set('key', m.key);
    const protocols = [SUBPROTOCOL];
    if (this.#plan.auth) {
      const res = await fetch(new URL('/v1/challenge', base));
      if (!res.ok) throw new Error(`challenge: HTTP ${res.status}`);
      const ch = (await res.json()) as { relayKey: string; nonce: string };
      const relayKey = fromBase64Url(ch.relayKey)!;
      const proof = authProof(fromBase64Url(secret)!, relayKey, fromBase64Url(m.key)!, relayKey, fromBase64Url(ch.nonce)!);
      protocols.push(authSubprotocol({ key: m.key, nonce: ch.nonce, proof: Buffer.from(proof).toString('base64url') }));
    }
    const ws = new WebSocket(url, protocols, { perMessageDeflate: false });
    m.ws = ws;
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: HTTP ${res.statusCode}`)));
    });
    ws.on('error', () => undefined);
    ws.on('close', () => {
      if (this.#running !== undefined) this.#error(`connection of ${m.key.slice(0, 8)} closed during a run`);
    });
    ws.on('message', (data) => this.#onMessage(m, String(data)));
    await new Promise<void>((resolve) => {
      m.subscribed = resolve;
      ws.send(JSON.stringify({ type: 'subscribe', rid: this.#rid++, channel: m.channel, after: m.lastSeq }));
    });
  }

  get connections(): number {
    return this.#members.length;
  }

  #error(message: string): void {
    this.#errors++;
    this.#firstError ??= message;
  }

  #onMessage(m: Member, text: string): void {
    let f: { type: string; rid?: number; seq?: number; body?: string; code?: string; message?: string; retryAfterMs?: number };
    try {
      f = JSON.parse(text) as typeof f;
    } catch {
      this.#error('unparseable frame');
      return;
    }
    const t = nowUs();
    switch (f.type) {
      case 'sent': {
        const attempt = m.pending.get(f.rid!);
        if (attempt === undefined) return;
        m.pending.delete(f.rid!);
        m.inflight--;
        if (this.#recording) {
          this.#acked++;
          this.#ackHist.record(t - attempt.due);
        }
        if (this.#running?.mode === 'closed') this.#send(m, t);
        return;
      }
      case 'deliver': {
        const seq = f.seq!;
        // A member is not sent its own messages, so its sequence has gaps; it must only rise.
        if (seq <= m.lastSeq) this.#outOfOrder++;
        m.lastSeq = seq;
        if (this.#recording) {
          this.#delivered++;
          const due = Buffer.from(f.body!.slice(0, 12), 'base64url').readDoubleLE(0);
          this.#deliverHist.record(t - due);
        }
        if (++m.unacked >= ACK_EVERY) this.#ack(m);
        else this.#dirty.add(m);
        if (!this.#flushScheduled) {
          this.#flushScheduled = true;
          setImmediate(() => {
            this.#flushScheduled = false;
            for (const d of this.#dirty) if (d.unacked > 0) this.#ack(d);
            this.#dirty.clear();
          });
        }
        return;
      }
      case 'queue.empty':
        m.subscribed();
        return;
      case 'subscribed':
        return;
      case 'error': {
        const attempt = f.rid === undefined ? undefined : m.pending.get(f.rid);
        if (f.code === 'overloaded' && this.#recording) this.#refused++;
        if (attempt !== undefined) {
          m.pending.delete(f.rid!);
          const run = this.#running;
          if (f.code === 'overloaded' && run?.mode === 'open' && run.retry === true) {
            const again = { ...attempt, refusals: attempt.refusals + 1 };
            setTimeout(() => this.#transmit(m, again), retryDelay(attempt.refusals, Math.random, f.retryAfterMs));
            this.#errors++;
            return;
          }
          m.inflight--;
        }
        this.#error(`${f.code ?? 'error'}: ${f.message ?? ''}`);
        return;
      }
      default:
        return;
    }
  }

  #ack(m: Member): void {
    m.unacked = 0;
    m.ws?.send(`{"type":"ack","channel":"${m.channel}","seq":${m.lastSeq}}`);
  }

  #send(m: Member, due: number): void {
    const ws = m.ws;
    if (ws === undefined || ws.readyState !== WebSocket.OPEN) return;
    m.inflight++;
    if (this.#recording) this.#sent++;
    this.#transmit(m, { due, msgId: `g${process.pid}-${m.counter++}`, refusals: 0 });
  }

  /** Puts one attempt of a send on the wire (a retry keeps the first attempt's due time and id). */
  #transmit(m: Member, attempt: Attempt): void {
    const ws = m.ws;
    if (ws === undefined || ws.readyState !== WebSocket.OPEN) {
      m.inflight--;
      return;
    }
    const rid = this.#rid++;
    const stamp = Buffer.alloc(9);
    stamp.writeDoubleLE(attempt.due, 0);
    const body = stamp.toString('base64url') + this.#filler;
    m.pending.set(rid, attempt);
    ws.send(
      `{"type":"send","rid":${rid},"channel":"${m.channel}","clientMsgId":"${attempt.msgId}","headers":${m.headersJson},"body":"${body}","commitment":"${this.#commitment}"}`,
    );
  }

  async run(spec: RunSpec): Promise<GeneratorResult> {
    this.#running = spec;
    this.#recording = false;
    const start = nowUs();
    let openTimer: NodeJS.Timeout | undefined;
    if (spec.mode === 'closed') {
      for (const m of this.#senders) for (let i = 0; i < spec.window; i++) this.#send(m, start);
    } else {
      const interval = 1e6 / spec.rate; // µs between sends of this generator
      let k = 0;
      const tick = (): void => {
        if (this.#running !== spec) return;
        const now = nowUs();
        while (start + k * interval <= now) {
          const m = this.#senders[k % this.#senders.length]!;
          const due = start + k * interval;
          k++;
          if (m.inflight >= OPEN_LOOP_MAX_INFLIGHT) {
            if (this.#recording) this.#skipped++;
            continue;
          }
          this.#send(m, due);
        }
        openTimer = setTimeout(tick, 1);
      };
      tick();
    }
    await sleep(spec.warmupMs);
    this.#reset();
    this.#recording = true;
    const windowStart = nowUs();
    await sleep(spec.durationMs);
    this.#recording = false;
    const seconds = (nowUs() - windowStart) / 1e6;
    const result: GeneratorResult = {
      seconds,
      sent: this.#sent,
      acked: this.#acked,
      delivered: this.#delivered,
      skipped: this.#skipped,
      errors: this.#errors,
      refused: this.#refused,
      firstError: this.#firstError,
      outOfOrder: this.#outOfOrder,
      ack: { ...this.#ackHist.toJSON(), counts: [...this.#ackHist.counts] },
      delivery: { ...this.#deliverHist.toJSON(), counts: [...this.#deliverHist.counts] },
    };
    this.#running = undefined;
    clearTimeout(openTimer);
    // Let what is in flight land, so the next run starts from a quiet relay.
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && this.#senders.some((m) => m.inflight > 0)) await sleep(20);
    await sleep(200);
    return result;
  }

  #reset(): void {
    this.#ackHist.reset();
    this.#deliverHist.reset();
    this.#sent = this.#acked = this.#delivered = this.#skipped = this.#errors = this.#refused = this.#outOfOrder = 0;
    this.#firstError = undefined;
  }

  close(): void {
    for (const m of this.#members) m.ws?.close(1000, 'bench done');
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// Child-process entry: commands over the IPC channel from the parent (see load-fleet.ts).
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href && process.send !== undefined) {
  let gen: Generator | undefined;
  const reply = (r: GeneratorReply): void => void process.send!(r);
  process.on('message', (msg: GeneratorCommand) => {
    switch (msg.cmd) {
      case 'init':
        gen = new Generator(msg.plan);
        gen.connectAll().then(
          () => reply({ type: 'ready', connections: gen!.connections }),
          (err: unknown) => reply({ type: 'failed', message: err instanceof Error ? err.message : String(err) }),
        );
        return;
      case 'run':
        gen!.run(msg.spec).then(
          (result) => reply({ type: 'result', result }),
          (err: unknown) => reply({ type: 'failed', message: err instanceof Error ? err.message : String(err) }),
        );
        return;
      case 'stop':
        gen?.close();
        setTimeout(() => process.exit(0), 200);
        return;
    }
  });
  process.on('disconnect', () => process.exit(0));
}
