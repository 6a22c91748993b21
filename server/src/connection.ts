import type { Duplex } from 'node:stream';
import type { RawData, WebSocket } from 'ws';
import {
  BackchannelError,
  CLOSE_CODES,
  ClientFrame,
  type ErrorCode,
  type RelayFrame,
} from '@backchannel/client-sdk/protocol';
import { admissionLimits, overloadedFrame, refusesSend, retryAfterMs, sendRidOf, type AdmissionLimits } from './admission.js';
import type { RelayContext } from './context.js';
import type { Subscription } from './delivery/subscription.js';
import type { Sink } from './delivery/sink.js';
import { TokenBucket } from './rate-limit.js';
import { handleFrame } from './handlers/dispatch.js';

/** Output gathered for one write before it is written anyway (a page of backlog, say). */
const CORK_BYTES = 64 * 1024;

/** Bad frames tolerated (answered with errors) before the connection is closed. */
const MAX_STRIKES = 100;

/**
 * One authenticated WebSocket: size-checked by `ws`, rate-limited, parsed once, validated by the
 * protocol's zod schemas, dispatched. A bad frame gets an error frame; the connection's other
 * work goes on. Output past the slow-consumer bound cuts the connection; the client resumes.
 */
export class Connection implements Sink {
  readonly memberKey: Uint8Array;
  readonly memberText: string;
  readonly subscriptions = new Map<string, Subscription>();
  alive = true;
  readonly #ws: WebSocket;
  readonly #socket: Duplex;
  readonly #ctx: RelayContext;
  readonly #bucket: TokenBucket;
  readonly #limits: AdmissionLimits;
  #strikes = 0;
  #closed = false;
  /** Output is being gathered for one write (see `send`). */
  #corked = false;
  /** A short, non-secret tag of the member key for logs. */
  readonly #short: string;

  constructor(ws: WebSocket, socket: Duplex, memberKey: Uint8Array, memberText: string, ctx: RelayContext) {
    this.#ws = ws;
    this.#socket = socket;
    this.memberKey = memberKey;
    this.memberText = memberText;
    this.#ctx = ctx;
    this.#bucket = new TokenBucket(ctx.config.BACKCHANNEL_RATE_PER_SEC, ctx.config.BACKCHANNEL_RATE_BURST);
    this.#limits = admissionLimits(ctx.config);
    this.#short = memberText.slice(0, 8);
    ctx.logger.debug({ event: 'connected', member: this.#short }, 'member connected');
    ws.on('message', (data, isBinary) => this.#onMessage(data, isBinary));
    ws.on('pong', () => {
      this.alive = true;
    });
  }

  /** Sends a frame unless the connection is closed or its reader has fallen too far behind. */
  send(frame: RelayFrame): boolean {
    return this.sendText(frame.type, JSON.stringify(frame));
  }

  /**
   * {@link send} for a frame already serialised; `type` is its type, for metrics. Frames sent in
   * one turn of the event loop (a batch's acks and deliveries, say) leave in one write, up to
   * CORK_BYTES: the socket is corked at the first and uncorked once the turn's I/O callbacks are
   * done.
   */
  sendText(type: RelayFrame['type'], json: string): boolean {
    if (this.#closed || this.#ws.readyState !== this.#ws.OPEN) return false;
    // Gathered output counts as buffered: hand it to the kernel before judging the reader.
    if (this.#corked && this.#ws.bufferedAmount > CORK_BYTES) this.#uncork();
    if (this.#ws.bufferedAmount > this.#ctx.config.BACKCHANNEL_SLOW_CONSUMER_BYTES) {
      this.#ctx.logger.warn({ event: 'slow_consumer', buffered: this.#ws.bufferedAmount }, 'slow consumer cut; it will resume');
      this.terminate();
      return false;
    }
    if (!this.#corked) {
      this.#corked = true;
      this.#socket.cork();
      setImmediate(this.#uncork);
    }
    this.#ws.send(json);
    this.#ctx.metrics.framesOut.inc({ type });
    return true;
  }

  readonly #uncork = (): void => {
    if (!this.#corked) return;
    this.#corked = false;
    this.#socket.uncork();
  };

  /** Answers a request with an error code; `overloaded` carries the relay's retry-after hint. */
  fail(rid: number | undefined, code: ErrorCode, message: string): void {
    this.#ctx.metrics.errors.inc({ code });
    const hint = code === 'overloaded' ? { retryAfterMs: retryAfterMs(this.#limits) } : {};
    this.send(rid === undefined ? { type: 'error', code, message, ...hint } : { type: 'error', rid, code, message, ...hint });
  }

  /** Cuts the connection after a server-side failure; the client reconnects and resumes. */
  abort(): void {
    this.close(1013, 'try again later');
  }

  /** Closes with a code, then makes sure the socket goes even if the peer never answers. */
  close(code: number, reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#ws.close(code, reason);
    setTimeout(() => this.#ws.terminate(), 2_000).unref();
  }

  /** Drops the socket at once (slow consumer, missed heartbeat). */
  terminate(): void {
    this.#closed = true;
    this.#ws.terminate();
  }

  /** Pings; a connection that did not pong since the last ping is dropped. */
  heartbeat(): void {
    if (!this.alive) {
      this.terminate();
      return;
    }
    this.alive = false;
    this.#ws.ping();
  }

  /** Called once the socket is gone. */
  disposed(): void {
    this.#closed = true;
    for (const sub of this.subscriptions.values()) {
      sub.close();
      this.#ctx.hub.remove(sub);
    }
    this.subscriptions.clear();
  }

  #onMessage(data: RawData, isBinary: boolean): void {
    if (this.#closed) return;
    if (!this.#bucket.take()) {
      this.#strike('rate_limited', undefined, 'too many frames; slow down');
      return;
    }
    if (isBinary) {
      this.#strike('bad_frame', undefined, 'frames are JSON text');
      return;
    }
    if (this.#refusedEarly(data)) return;
    let raw: unknown;
    try {
      raw = JSON.parse(data.toString());
    } catch {
      this.#strike('bad_json', undefined, 'frame is not JSON');
      return;
    }
    const parsed = ClientFrame.safeParse(raw);
    if (!parsed.success) {
      const rid = ridOf(raw);
      const issue = parsed.error.issues[0];
      this.#strike('bad_frame', rid, `invalid frame at ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`);
      return;
    }
    const frame = parsed.data;
    this.#ctx.metrics.framesIn.inc({ type: frame.type });
    const rid = 'rid' in frame ? frame.rid : undefined;
    // Metadata only: never a frame's content (ciphertext, secrets, signatures).
    this.#ctx.logger.trace({ event: 'frame', type: frame.type, rid, member: this.#short }, 'frame');
    handleFrame(this.#ctx, this, frame).catch((err: unknown) => {
      if (err instanceof BackchannelError) {
        this.#ctx.logger.debug({ event: 'frame_refused', type: frame.type, rid, code: err.code, member: this.#short }, 'frame refused');
        this.fail(rid, err.code, err.message);
      } else if (isDatabaseUnavailable(err)) {
        // Nothing was done: the client may retry once the database is back.
        this.fail(rid, 'unavailable', 'the relay cannot reach its database; retry');
      } else {
        this.#ctx.logger.error({ event: 'handler_failed', frame: frame.type, err }, 'frame handler failed');
        this.fail(rid, 'internal', 'internal error');
      }
    });
  }

  /**
   * Under overload, a send is refused before it is decoded, parsed or validated (see
   * admission.ts): refusing must cost far less than accepting, or the refusals eat the capacity
   * they protect (receive livelock). Not a strike: the client did nothing wrong.
   */
  #refusedEarly(data: RawData): boolean {
    if (!refusesSend(this.#ctx.messages, this.#limits)) return false;
    const rid = sendRidOf(data);
    if (rid === undefined) return false;
    this.#ctx.metrics.errors.inc({ code: 'overloaded' });
    this.sendText('error', overloadedFrame(rid, retryAfterMs(this.#limits)));
    return true;
  }

  #strike(code: ErrorCode, rid: number | undefined, message: string): void {
    this.#ctx.logger.debug({ event: 'frame_refused', code, rid, member: this.#short }, 'bad frame');
    this.fail(rid, code, message);
    if (++this.#strikes >= MAX_STRIKES) this.close(CLOSE_CODES.policyViolation, 'too many bad frames');
  }
}

/**
 * A failure to reach PostgreSQL (refused, reset, terminated, pool timeout, shutting down): SQLSTATE
 * classes 08 (connection) and 57P (operator intervention), or the driver's own connection errors.
 */
function isDatabaseUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && (code.startsWith('08') || code.startsWith('57P') || code === 'ECONNREFUSED' || code === 'ECONNRESET')) return true;
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/.test(err.message);
}

function ridOf(raw: unknown): number | undefined {
  if (typeof raw !== 'object' || raw === null || !('rid' in raw)) return undefined;
  const rid = (raw as { rid: unknown }).rid;
  return typeof rid === 'number' && Number.isInteger(rid) && rid >= 0 && rid <= 0xffff_ffff ? rid : undefined;
}
