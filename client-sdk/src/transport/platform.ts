/** The part of the WebSocket API the SDK uses; browsers' WebSocket and Node's `ws` both fit. */
export interface WebSocketLike {
  readonly readyState: number;
  readonly bufferedAmount: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}

/** A WebSocket constructor (browser `WebSocket`, or `ws` in Node). */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** `fetch`, injected so tests and unusual platforms can supply their own. */
export type FetchLike = (url: string, init?: { signal?: AbortSignal }) => Promise<{ ok: boolean; status: number; json(): Promise<unknown> }>;

/** Platform pieces, all injectable (centrifuge-js `options.websocket`; kysely's injected `fs`). */
export interface Platform {
  readonly WebSocket: WebSocketConstructor;
  readonly fetch: FetchLike;
  readonly now: () => number;
  /** A uniform random number in [0, 1), for backoff jitter. */
  readonly random: () => number;
  readonly setTimeout: (fn: () => void, ms: number) => unknown;
  readonly clearTimeout: (handle: unknown) => void;
}

/** The platform's clock and timers. */
export type Clock = Pick<Platform, 'now' | 'setTimeout' | 'clearTimeout'>;

/** The clock and timers of the current JavaScript environment, with any of them overridden. */
export function defaultClock(overrides: Partial<Platform> = {}): Clock {
  return {
    now: overrides.now ?? (() => Date.now()),
    setTimeout: overrides.setTimeout ?? ((fn, ms) => globalThis.setTimeout(fn, ms)),
    clearTimeout: overrides.clearTimeout ?? ((h) => globalThis.clearTimeout(h as ReturnType<typeof globalThis.setTimeout>)),
  };
}

/** The platform of the current JavaScript environment; `WebSocket` must be given in Node < 22. */
export function defaultPlatform(overrides: Partial<Platform> = {}): Platform {
  const g = globalThis as { WebSocket?: WebSocketConstructor; fetch?: FetchLike };
  const WebSocket = overrides.WebSocket ?? g.WebSocket;
  const fetch = overrides.fetch ?? g.fetch?.bind(globalThis);
  if (WebSocket === undefined || fetch === undefined) {
    throw new TypeError('no WebSocket/fetch in this environment: pass them in the platform options (e.g. WebSocket from the `ws` package)');
  }
  return {
    WebSocket,
    fetch,
    random: overrides.random ?? Math.random,
    ...defaultClock(overrides),
  };
}
