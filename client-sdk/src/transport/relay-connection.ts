import { authProof } from '../auth-proof.js';
import {
  AUTH_PATHS,
  BackchannelError,
  CLOSE_CODES,
  Challenge,
  RelayFrame,
  SUBPROTOCOL,
  authSubprotocol,
  fromBase64Url,
  toBase64Url,
  type ClientFrame,
  type RelayFrameOf,
} from '../protocol/index.js';
import { sodiumReady } from '../sodium.js';
import { backoffDelay, retryDelay } from './backoff.js';
import { defaultPlatform, type Platform, type WebSocketLike } from './platform.js';
import type { ConnectionState, StateChange, StateReason } from './state.js';

/** Client frames that carry a request id, without it (the connection assigns it). */
export type RequestFrame = ClientFrame extends infer F ? (F extends { rid: number } ? Omit<F, 'rid'> : never) : never;

/** What the relay answers to each request type. */
export interface ResponseMap {
  send: RelayFrameOf<'sent'>;
  subscribe: RelayFrameOf<'subscribed'>;
  'prekeys.publish': RelayFrameOf<'ok'>;
  'prekeys.fetch': RelayFrameOf<'prekeys.bundle'>;
  'group.get': RelayFrameOf<'group'>;
  'group.sign': RelayFrameOf<'ok'>;
  'channel.convene': RelayFrameOf<'channel.convened'>;
  'invite.create': RelayFrameOf<'ok'>;
  'invite.redeem': RelayFrameOf<'ok'>;
  'disclosure.propose': RelayFrameOf<'disclosure'>;
  'disclosure.consent': RelayFrameOf<'disclosure'>;
  'disclosure.veto': RelayFrameOf<'disclosure'>;
  'disclosure.withdraw': RelayFrameOf<'disclosure'>;
  'disclosure.publish': RelayFrameOf<'disclosure'>;
  'disclosure.get': RelayFrameOf<'disclosure'>;
  'formal.checkpoint': RelayFrameOf<'ok'>;
  ping: RelayFrameOf<'ok'>;
}

/** A member's X25519 key pair, which logs it in to the relay. */
export interface ConnectionIdentity {
  readonly publicKey: Uint8Array;
  readonly secretKey: Uint8Array;
}

/** Delivery callbacks of one channel subscription. */
export interface ChannelHandlers {
  /** The last sequence the application has durably processed (resume point). */
  after(): number;
  /**
   * Processes one delivered message. Called once per sequence, in order; the relay is acked
   * only after it resolves, so a crash before that means redelivery, never loss. Resolving
   * `false` means the frame was refused: the resume point does not move past it.
   */
  deliver(frame: RelayFrameOf<'deliver'>): Promise<boolean | void>;
  /** The stored backlog is fully delivered; live delivery follows. */
  queueEmpty?(seq: number): void;
  /**
   * A delivery at or below the resume point: usually a duplicate after a reconnect. A client
   * that remembers what it processed tells duplicates from deliveries it never saw (a relay
   * that renumbered one message past the rest to make the client skip them).
   */
  belowResumePoint?(frame: RelayFrameOf<'deliver'>): Promise<void>;
}

/** Options of {@link RelayConnection}. */
export interface RelayConnectionOptions {
  /**
   * The relay's base URL, `http(s)://host:port` (`ws(s)://` is read as `http(s)://`). Anything
   * else throws `bad_argument` at once.
   */
  readonly url: string;
  readonly identity: ConnectionIdentity;
  readonly platform?: Partial<Platform>;
  /** A request unanswered this long: retryable ones force a reconnect, others fail with `timeout`. */
  readonly requestTimeoutMs?: number;
  /** How often an open connection pings the relay; no answer within the request timeout means reconnect. */
  readonly heartbeatMs?: number;
  /**
   * The bound on the **first** connect (default 10 s): a relay not reached by then fails
   * `connect()` with `unavailable` (its `cause` the last failure seen) and closes the connection.
   * Once open, a connection reconnects without bound.
   */
  readonly connectTimeoutMs?: number;
}

/** The default bound on a first connect. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/** Checks a relay URL; `ws(s)://` is read as `http(s)://`. */
function relayBaseUrl(url: unknown): string {
  const bad = (why: string): BackchannelError => new BackchannelError('bad_argument', `the relay URL ${JSON.stringify(url)} ${why}; expected http(s)://host[:port]`);
  if (typeof url !== 'string') throw bad('is not a string');
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (cause) {
    throw new BackchannelError('bad_argument', `the relay URL ${JSON.stringify(url)} is not a URL; expected http(s)://host[:port]`, { cause });
  }
  if (parsed.protocol === 'ws:') parsed.protocol = 'http:';
  else if (parsed.protocol === 'wss:') parsed.protocol = 'https:';
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw bad(`has the scheme ${parsed.protocol}`);
  return parsed.toString();
}

/** What a socket's `error` event says (`ws` gives an Error; browsers say nothing). */
function socketError(event: unknown): Error {
  const e = event as { error?: unknown; message?: unknown } | null;
  if (e?.error instanceof Error) return e.error;
  return new Error(typeof e?.message === 'string' && e.message !== '' ? e.message : 'WebSocket error');
}

interface Pending {
  readonly frame: ClientFrame;
  readonly retry: boolean;
  readonly resolve: (frame: RelayFrame) => void;
  readonly reject: (err: Error) => void;
  timer: unknown;
  /** Retries after `unavailable` answers, for backoff. */
  attempts: number;
}

interface ChannelSub {
  readonly handlers: ChannelHandlers;
  lastProcessed: number;
  queue: Promise<void>;
  queued: number;
  unacked: number;
  /** Set when the application failed to process a delivery: skip the rest until resubscribed. */
  broken: boolean;
}

type StateListener = (change: StateChange) => void;

/** Frames the relay pushes without being asked: group log changes, expiry notices, disclosure stages. */
export type PushFrame = RelayFrameOf<'group'> | RelayFrameOf<'expired'> | RelayFrameOf<'disclosure'>;
type PushListener = (frame: PushFrame) => void;

/**
 * One authenticated connection to the relay, kept alive across failures: DH authentication,
 * an explicit state machine, full-jitter reconnects, resubscription from the last processed
 * sequence, requests re-sent (sends are idempotent by client message id) until answered, and
 * de-duplication so each sequence reaches the application once.
 */
export class RelayConnection {
  readonly #options: RelayConnectionOptions;
  readonly #platform: Platform;
  readonly #pending = new Map<number, Pending>();
  readonly #channels = new Map<string, ChannelSub>();
  readonly #listeners = new Set<StateListener>();
  readonly #pushListeners = new Set<PushListener>();
  #state: ConnectionState = 'idle';
  #ws: WebSocketLike | undefined;
  #nextRid = 1;
  #attempt = 0;
  #retryTimer: unknown;
  #opened: { resolve: () => void; reject: (e: Error) => void } | undefined;
  #drainWaiters: (() => void)[] = [];
  #heartbeat: unknown;
  readonly #base: string;
  /** Set once the connection has been open: from then on it reconnects without bound. */
  #everOpened = false;
  #connectTimer: unknown;
  /** The last reason an attempt failed, for the `cause` of a failed first connect. */
  #lastFailure: unknown;
  /** Whether the current socket opened (a close before that is a failed upgrade). */
  #socketOpened = false;

  /** Throws `bad_argument` for a relay URL that is not `http(s)://` (or `ws(s)://`). */
  constructor(options: RelayConnectionOptions) {
    this.#base = relayBaseUrl(options.url);
    this.#options = options;
    this.#platform = defaultPlatform(options.platform);
  }

  /** The current state. */
  get state(): ConnectionState {
    return this.#state;
  }

  /** Listens to state changes; returns the function that stops listening. */
  onStateChange(listener: StateListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Listens to pushed frames (group log changes, expiry notices, disclosure stages); returns the unsubscribe function. */
  onPush(listener: PushListener): () => void {
    this.#pushListeners.add(listener);
    return () => this.#pushListeners.delete(listener);
  }

  /**
   * Connects; resolves once authenticated. Later failures reconnect by themselves. A first
   * connect that reaches no relay within `connectTimeoutMs` rejects with `unavailable` (at once
   * for an answer that is no relay's, such as HTTP 404), and a relay refusing this member's
   * authentication (HTTP 401 at the upgrade) with `auth_failed`; either closes the connection.
   */
  connect(signal?: AbortSignal): Promise<void> {
    if (this.#state === 'open') return Promise.resolve();
    if (this.#state === 'closed') return Promise.reject(new BackchannelError('closed', 'connection closed'));
    return withAbort(
      new Promise<void>((resolve, reject) => {
        this.#opened = { resolve, reject };
        if (!this.#everOpened && this.#connectTimer === undefined) {
          const ms = this.#options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
          this.#connectTimer = this.#platform.setTimeout(() => {
            const last = this.#lastFailure instanceof Error ? `: ${this.#lastFailure.message}` : '';
            this.#failConnect(new BackchannelError('unavailable', `no relay reached at ${this.#base} within ${ms} ms${last}`, { cause: this.#lastFailure }), 'network_error');
          }, ms);
        }
        if (this.#state === 'idle') {
          this.#setState('connecting', 'connect');
          void this.#open();
        }
      }),
      signal,
    );
  }

  /**
   * Sends a request and resolves with the relay's answer, or rejects with its error code.
   * With `retry`, the request is re-sent after every reconnect until answered: use it only for
   * idempotent requests (every `send` is, by its client message id).
   */
  request<F extends RequestFrame>(frame: F, options: { signal?: AbortSignal; retry?: boolean } = {}): Promise<ResponseMap[F['type']]> {
    if (this.#state === 'closed') return Promise.reject(new BackchannelError('closed', 'connection closed'));
    const rid = this.#nextRid++;
    const full = { ...frame, rid } as ClientFrame;
    const promise = new Promise<RelayFrame>((resolve, reject) => {
      const pending: Pending = { frame: full, retry: options.retry ?? false, resolve, reject, timer: undefined, attempts: 0 };
      this.#pending.set(rid, pending);
      this.#transmit(pending);
    });
    const cleanup = (): void => this.#forget(rid);
    return withAbort(promise, options.signal, cleanup).finally(cleanup) as Promise<ResponseMap[F['type']]>;
  }

  /**
   * Subscribes to a channel's messages (and re-subscribes after every reconnect from
   * `handlers.after()`). Returns the function that unsubscribes.
   */
  subscribe(channel: string, handlers: ChannelHandlers): () => void {
    const sub: ChannelSub = { handlers, lastProcessed: handlers.after(), queue: Promise.resolve(), queued: 0, unacked: 0, broken: false };
    this.#channels.set(channel, sub);
    if (this.#state === 'open') this.#sendSubscribe(channel, sub);
    return () => {
      if (this.#channels.get(channel) === sub) this.#channels.delete(channel);
    };
  }

  /**
   * Closes after the in-flight retryable requests (sends) are answered, or when `signal`
   * aborts; then the socket closes normally.
   */
  async close(signal?: AbortSignal): Promise<void> {
    if (this.#state === 'closed') return;
    if (this.#state !== 'idle' && this.#hasRetryable()) {
      await withAbort(new Promise<void>((resolve) => this.#drainWaiters.push(resolve)), signal).catch(() => undefined);
    }
    this.#platform.clearTimeout(this.#retryTimer);
    this.#platform.clearTimeout(this.#heartbeat);
    this.#platform.clearTimeout(this.#connectTimer);
    this.#setState('closed', 'closed_by_client');
    this.#failPending(() => true, new BackchannelError('closed', 'connection closed'));
    this.#opened?.reject(new BackchannelError('closed', 'connection closed'));
    this.#opened = undefined;
    const ws = this.#ws;
    this.#ws = undefined;
    ws?.close(CLOSE_CODES.normal, 'client closing');
  }

  /** A first connect that cannot succeed: close, and reject `connect()` and every request with `err`. */
  #failConnect(err: BackchannelError, reason: StateReason): void {
    if (this.#state === 'closed') return;
    this.#platform.clearTimeout(this.#retryTimer);
    this.#platform.clearTimeout(this.#heartbeat);
    this.#platform.clearTimeout(this.#connectTimer);
    this.#setState('closed', reason);
    this.#failPending(() => true, err);
    this.#opened?.reject(err);
    this.#opened = undefined;
    const ws = this.#ws;
    this.#ws = undefined;
    ws?.close(CLOSE_CODES.normal, 'client giving up');
  }

  #hasRetryable(): boolean {
    for (const p of this.#pending.values()) if (p.retry) return true;
    return false;
  }

  #forget(rid: number): void {
    const p = this.#pending.get(rid);
    if (p === undefined) return;
    this.#platform.clearTimeout(p.timer);
    this.#pending.delete(rid);
    if (this.#drainWaiters.length > 0 && !this.#hasRetryable()) for (const w of this.#drainWaiters.splice(0)) w();
  }

  #failPending(which: (p: Pending) => boolean, err: BackchannelError): void {
    for (const [rid, p] of this.#pending) {
      if (!which(p)) continue;
      this.#forget(rid);
      p.reject(err);
    }
  }

  #setState(to: ConnectionState, reason: StateReason): void {
    const from = this.#state;
    if (from === to) return;
    this.#state = to;
    for (const l of this.#listeners) l({ from, to, reason });
  }

  /** Reads a JSON document from the relay's HTTP side (e.g. the formal log), by path. */
  async getJson(path: string, signal?: AbortSignal): Promise<unknown> {
    const res = await this.#platform.fetch(new URL(path, this.#base).toString(), signal ? { signal } : undefined);
    if (!res.ok) throw new BackchannelError('unavailable', `${path} answered HTTP ${res.status}`);
    return res.json();
  }

  async #open(): Promise<void> {
    // An answer that is no relay's (HTTP 404, not a challenge): retrying will not help a first connect.
    let notARelay = false;
    try {
      await sodiumReady();
      const challengeUrl = new URL(AUTH_PATHS.challenge, this.#base).toString();
      const res = await this.#platform.fetch(challengeUrl);
      if (!res.ok) {
        notARelay = res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429;
        throw new BackchannelError('unavailable', `${challengeUrl} answered HTTP ${res.status}`);
      }
      let challenge: Challenge;
      try {
        challenge = Challenge.parse(await res.json());
      } catch (cause) {
        notARelay = true;
        throw new BackchannelError('unavailable', `${challengeUrl} answered no Backchannel challenge`, { cause });
      }
      const relayKey = fromBase64Url(challenge.relayKey)!;
      const nonce = fromBase64Url(challenge.nonce)!;
      const { publicKey, secretKey } = this.#options.identity;
      const proof = authProof(secretKey, relayKey, publicKey, relayKey, nonce);
      const wsUrl = new URL(AUTH_PATHS.socket, this.#base);
      wsUrl.protocol = wsUrl.protocol === 'https:' ? 'wss:' : 'ws:';
      // The credentials travel as an offered subprotocol, not in the URL (see AUTH_SUBPROTOCOL_PREFIX).
      const credentials = authSubprotocol({ key: toBase64Url(publicKey), nonce: challenge.nonce, proof: toBase64Url(proof) });
      if (this.#state === 'closed') return;
      const ws = new this.#platform.WebSocket(wsUrl.toString(), [SUBPROTOCOL, credentials]);
      this.#ws = ws;
      this.#socketOpened = false;
      ws.onopen = () => this.#onOpen(ws);
      ws.onmessage = (ev) => this.#onMessage(ev.data);
      ws.onclose = (ev) => this.#onClose(ws, ev.code);
      ws.onerror = (ev) => {
        if (ws === this.#ws) this.#lastFailure = socketError(ev); // onclose follows and handles it
      };
    } catch (err) {
      this.#lastFailure = err;
      if (notARelay && !this.#everOpened) {
        const message = err instanceof Error ? err.message : String(err);
        this.#failConnect(new BackchannelError('unavailable', `no relay at ${this.#base}: ${message}`, { cause: err }), 'network_error');
        return;
      }
      this.#scheduleReconnect('network_error');
    }
  }

  /** Pings while open: a receive-only client also notices a half-open socket and reconnects. */
  #scheduleHeartbeat(ws: WebSocketLike): void {
    this.#platform.clearTimeout(this.#heartbeat);
    this.#heartbeat = this.#platform.setTimeout(() => {
      if (this.#ws !== ws || this.#state !== 'open') return;
      this.request({ type: 'ping' }).then(
        () => this.#scheduleHeartbeat(ws),
        (err: unknown) => {
          if (this.#ws === ws && BackchannelError.is(err, 'timeout')) this.#lost('heartbeat_timeout');
        },
      );
    }, this.#options.heartbeatMs ?? 25_000);
  }

  #onOpen(ws: WebSocketLike): void {
    if (ws !== this.#ws) return;
    this.#everOpened = true;
    this.#socketOpened = true;
    this.#lastFailure = undefined;
    this.#platform.clearTimeout(this.#connectTimer);
    this.#scheduleHeartbeat(ws);
    this.#attempt = 0;
    this.#setState('open', 'authenticated');
    this.#opened?.resolve();
    this.#opened = undefined;
    for (const [channel, sub] of this.#channels) this.#sendSubscribe(channel, sub);
    for (const p of this.#pending.values()) this.#transmit(p);
  }

  #onClose(ws: WebSocketLike, code: number): void {
    if (ws !== this.#ws) return;
    this.#ws = undefined;
    if (this.#state === 'closed') return;
    if (code === CLOSE_CODES.membershipEnded) {
      this.#setState('closed', 'membership_ended');
      this.#failPending(() => true, new BackchannelError('not_member', 'membership ended'));
      return;
    }
    if (!this.#socketOpened) {
      // Closed before it opened: the upgrade failed. `ws` reports the HTTP status (browsers cannot).
      const failure = this.#lastFailure instanceof Error ? this.#lastFailure : new Error(`the WebSocket closed before opening (code ${code})`);
      this.#lastFailure = failure;
      if (/\b401\b/.test(failure.message)) {
        if (!this.#everOpened) {
          this.#failConnect(new BackchannelError('auth_failed', `the relay at ${this.#base} refused this member's authentication (HTTP 401 at the upgrade)`, { cause: failure }), 'auth_failed');
          return;
        }
        this.#lost('auth_failed');
        return;
      }
    }
    this.#lost(code === CLOSE_CODES.heartbeatTimeout ? 'heartbeat_timeout' : 'socket_closed');
  }

  /** Drops the current socket (if any) and reconnects; only retryable requests survive. */
  #lost(reason: StateReason, delayMs?: number): void {
    const ws = this.#ws;
    this.#ws = undefined;
    ws?.close(CLOSE_CODES.normal, reason);
    for (const p of this.#pending.values()) this.#platform.clearTimeout(p.timer);
    this.#failPending((p) => !p.retry, new BackchannelError('closed', 'connection lost before the relay answered'));
    this.#scheduleReconnect(reason, delayMs);
  }

  #scheduleReconnect(reason: StateReason, delayMs?: number): void {
    if (this.#state === 'closed') return;
    this.#setState('reconnecting', reason);
    const delay = delayMs ?? backoffDelay(this.#attempt++, this.#platform.random);
    this.#platform.clearTimeout(this.#retryTimer);
    this.#retryTimer = this.#platform.setTimeout(() => {
      if (this.#state === 'reconnecting') void this.#open();
    }, delay);
  }

  #transmit(p: Pending): void {
    const ws = this.#ws;
    if (this.#state !== 'open' || ws === undefined) return; // sent on (re)open
    ws.send(JSON.stringify(p.frame));
    this.#platform.clearTimeout(p.timer);
    p.timer = this.#platform.setTimeout(() => {
      if (p.retry) {
        // Probably a half-open socket: drop it; the request goes again after reconnecting.
        if (this.#ws === ws) this.#lost('heartbeat_timeout');
      } else {
        this.#forget((p.frame as { rid: number }).rid);
        p.reject(new BackchannelError('timeout', 'the relay did not answer in time'));
      }
    }, this.#options.requestTimeoutMs ?? 15_000);
  }

  #sendSubscribe(channel: string, sub: ChannelSub): void {
    sub.lastProcessed = Math.max(sub.lastProcessed, sub.handlers.after());
    sub.broken = false;
    const ws = this.#ws;
    this.request({ type: 'subscribe', channel, after: sub.lastProcessed }).catch((err: unknown) => {
      // A transient failure (the relay's database restarting) would otherwise leave this
      // channel silently undelivered until some later reconnect: reconnect now and resubscribe.
      if (BackchannelError.is(err) && ['unavailable', 'internal', 'timeout'].includes(err.code) && this.#ws === ws) this.#lost('socket_closed');
    });
  }

  #onMessage(data: unknown): void {
    if (typeof data !== 'string') return;
    let frame: RelayFrame;
    try {
      frame = RelayFrame.parse(JSON.parse(data));
    } catch {
      return; // a relay that sends garbage gets nothing from us; integrity is checked above this layer
    }
    switch (frame.type) {
      case 'deliver':
        this.#onDeliver(frame);
        return;
      case 'queue.empty':
        this.#channels.get(frame.channel)?.handlers.queueEmpty?.(frame.seq);
        return;
      case 'expired':
        for (const l of this.#pushListeners) l(frame);
        return;
      case 'group':
      case 'disclosure':
        if (frame.rid === undefined) {
          for (const l of this.#pushListeners) l(frame);
          return;
        }
        break;
      case 'reconnect':
        this.#lost('relay_reconnect', frame.retryAfterMs + backoffDelay(0, this.#platform.random));
        return;
    }
    if (!('rid' in frame) || frame.rid === undefined) return;
    const p = this.#pending.get(frame.rid);
    if (p === undefined) return;
    if (frame.type === 'error' && (frame.code === 'unavailable' || frame.code === 'overloaded') && p.retry) {
      // The relay could not store it (its database is down, or it is at capacity) and acked nothing: try again later.
      this.#platform.clearTimeout(p.timer);
      p.timer = this.#platform.setTimeout(() => this.#transmit(p), retryDelay(p.attempts++, this.#platform.random, frame.retryAfterMs));
      return;
    }
    this.#forget(frame.rid);
    if (frame.type === 'error') p.reject(new BackchannelError(frame.code, frame.message));
    else p.resolve(frame);
  }

  #onDeliver(frame: RelayFrameOf<'deliver'>): void {
    const sub = this.#channels.get(frame.channel);
    if (sub === undefined) return;
    sub.queued++;
    sub.queue = sub.queue.then(async () => {
      sub.queued--;
      if (sub.broken) return;
      if (frame.seq > sub.lastProcessed) {
        let accepted: boolean | void;
        try {
          accepted = await sub.handlers.deliver(frame);
        } catch {
          // Not acked, and nothing after it may be processed first: reconnect and resume here.
          sub.broken = true;
          this.#lost('socket_closed');
          return;
        }
        if (accepted !== false) sub.lastProcessed = frame.seq;
      } else if (sub.handlers.belowResumePoint !== undefined) {
        try {
          await sub.handlers.belowResumePoint(frame);
        } catch {
          sub.broken = true;
          this.#lost('socket_closed');
          return;
        }
      }
      // Ack in small batches, and whenever the local queue runs dry (the relay's next backlog
      // page waits for that ack).
      if (++sub.unacked >= 32 || sub.queued === 0) {
        sub.unacked = 0;
        this.#ws?.send(JSON.stringify({ type: 'ack', channel: frame.channel, seq: sub.lastProcessed }));
      }
    });
  }
}

function withAbort<T>(promise: Promise<T>, signal: AbortSignal | undefined, onAbort?: () => void): Promise<T> {
  if (signal === undefined) return promise;
  if (signal.aborted) {
    onAbort?.();
    return Promise.reject(new BackchannelError('aborted', 'aborted', { cause: signal.reason }));
  }
  return new Promise<T>((resolve, reject) => {
    const abort = (): void => {
      onAbort?.();
      reject(new BackchannelError('aborted', 'aborted', { cause: signal.reason }));
    };
    signal.addEventListener('abort', abort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', abort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', abort);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}
