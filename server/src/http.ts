import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { AUTH_PATHS, PROTOCOL_VERSION, toBase64Url } from '@backchannel/client-sdk/protocol';
import type { Authenticator } from './auth.js';
import type { RelayContext } from './context.js';
import { OperatorError } from './operator-error.js';
import { TokenBucket } from './rate-limit.js';
import { recordKeyHistory } from './store/relay-keys.js';

/** Extra HTTP routes mounted by later features (formal record, viewer page). */
export type RouteHandler = (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<boolean>;

/** How long one answer of `/.well-known/backchannel.json` is served from memory. */
const WELL_KNOWN_TTL_MS = 5_000;
/** Addresses tracked by the HTTP rate limit before idle ones are forgotten. */
const MAX_TRACKED_ADDRESSES = 10_000;

/** Writes a JSON answer. */
export function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/**
 * A token bucket per client address for the HTTP routes (challenges, the formal record, the
 * relay's keys). Behind a reverse proxy every request comes from the proxy's address: limit
 * there too, or raise BACKCHANNEL_HTTP_RATE_*.
 */
export class HttpRateLimit {
  readonly #rate: number;
  readonly #burst: number;
  readonly #buckets = new Map<string, TokenBucket>();

  constructor(ratePerSec: number, burst: number) {
    this.#rate = ratePerSec;
    this.#burst = burst;
  }

  /** Takes one token for `address`; false when it has none left. */
  take(address: string): boolean {
    let bucket = this.#buckets.get(address);
    if (bucket === undefined) {
      // Crude but bounded: a flood of addresses costs a reset of the table, never memory.
      if (this.#buckets.size >= MAX_TRACKED_ADDRESSES) this.#buckets.clear();
      bucket = new TokenBucket(this.#rate, this.#burst);
      this.#buckets.set(address, bucket);
    }
    return bucket.take();
  }
}

/** Answers `/metrics` (Prometheus text). */
export async function serveMetrics(ctx: RelayContext, res: ServerResponse): Promise<void> {
  const text = await ctx.metrics.scrape();
  res.writeHead(200, { 'content-type': ctx.metrics.registry.contentType, 'cache-control': 'no-store' });
  res.end(text);
}

/** Does the request carry `Authorization: Bearer <token>` (compared in constant time)? */
function bearerMatches(req: IncomingMessage, token: string): boolean {
  const given = Buffer.from(req.headers.authorization ?? '');
  const expected = Buffer.from(`Bearer ${token}`);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** The relay's HTTP surface: health, readiness, challenges, its public keys (and metrics, if allowed). */
export function httpHandler(ctx: RelayContext, auth: Authenticator, isReady: () => Promise<boolean>, extra: RouteHandler[]) {
  const limit = new HttpRateLimit(ctx.config.BACKCHANNEL_HTTP_RATE_PER_SEC, ctx.config.BACKCHANNEL_HTTP_RATE_BURST);
  let wellKnown: { body: unknown; at: number; authKey: Uint8Array } | undefined;
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://relay.invalid');
    // Everything served here is public and cookie-free, so browsers on other origins may read it
    // (the SDK in a web app fetches challenges); an Origin allowlist narrows that when set.
    const origin = req.headers.origin;
    const allowed = ctx.config.BACKCHANNEL_ORIGINS;
    if (origin !== undefined && (allowed === undefined || allowed.includes(origin))) {
      res.setHeader('access-control-allow-origin', allowed === undefined ? '*' : origin);
      res.setHeader('vary', 'origin');
    }
    try {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        json(res, 405, { code: 'method_not_allowed', message: 'method not allowed' });
        return;
      }
      switch (url.pathname) {
        case '/healthz':
          json(res, 200, { ok: true });
          return;
        case '/readyz': {
          const ready = await isReady();
          json(res, ready ? 200 : 503, { ready });
          return;
        }
        case '/metrics': {
          // Not on the public port unless a bearer token guards it (BACKCHANNEL_METRICS_TOKEN);
          // BACKCHANNEL_METRICS_PORT serves it on a separate address instead.
          const token = ctx.config.BACKCHANNEL_METRICS_TOKEN;
          if (token === undefined) break;
          if (!bearerMatches(req, token)) {
            res.setHeader('www-authenticate', 'Bearer');
            json(res, 401, { code: 'auth_failed', message: 'metrics need the bearer token' });
            return;
          }
          await serveMetrics(ctx, res);
          return;
        }
      }
      if (!limit.take(req.socket.remoteAddress ?? '')) {
        ctx.metrics.httpRateLimited.inc();
        res.setHeader('retry-after', '1');
        json(res, 429, { code: 'rate_limited', message: 'too many requests' });
        return;
      }
      switch (url.pathname) {
        case AUTH_PATHS.challenge:
          json(res, 200, auth.challenge());
          return;
        case '/.well-known/backchannel.json': {
          // Served from memory: every request reading the database let a client fill the pool.
          const authKey = ctx.keys.auth.publicKey;
          if (wellKnown === undefined || performance.now() - wellKnown.at > WELL_KNOWN_TTL_MS || wellKnown.authKey !== authKey) {
            const history = await recordKeyHistory(ctx.db);
            wellKnown = {
              at: performance.now(),
              authKey,
              body: {
                protocol: PROTOCOL_VERSION,
                authKey: toBase64Url(authKey),
                recordKey: toBase64Url(ctx.keys.record.publicKey),
                // Every record key the relay has used, newest first: old records stay verifiable.
                recordKeys: history.map((k) => toBase64Url(k.publicKey)),
              },
            };
          }
          json(res, 200, wellKnown.body);
          return;
        }
      }
      for (const route of extra) if (await route(req, res, url)) return;
      json(res, 404, { code: 'not_found', message: 'no such resource' });
    } catch (err) {
      ctx.logger.error({ event: 'http_failed', path: url.pathname, err }, 'http handler failed');
      if (!res.headersSent) json(res, 500, { code: 'internal', message: 'internal error' });
      else res.destroy();
    }
  };
}

/**
 * Listens on `host:port`; a taken or forbidden address fails with one line naming `variable`.
 * Resolves with the port actually bound (port 0: any free one).
 */
export function listen(server: Server, port: number, host: string, variable: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE') reject(new OperatorError('address_in_use', `${variable} ${port} is in use on ${host}: stop what holds it or choose another port`, { cause: err }));
      else reject(new OperatorError('address_in_use', `${variable}: cannot listen on ${host}:${port} (${err.code ?? err.message})`, { cause: err }));
    });
    server.listen(port, host, () => {
      const address = server.address();
      resolve(typeof address === 'object' && address !== null ? address.port : port);
    });
  });
}

/** A server for `/metrics` alone, on BACKCHANNEL_METRICS_HOST:BACKCHANNEL_METRICS_PORT. */
export function metricsServer(ctx: RelayContext): Server {
  return createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://relay.invalid');
    if (url.pathname !== '/metrics') return json(res, 404, { code: 'not_found', message: 'no such resource' });
    serveMetrics(ctx, res).catch((err: unknown) => {
      ctx.logger.error({ event: 'metrics_failed', err }, 'metrics scrape failed');
      if (!res.headersSent) json(res, 500, { code: 'internal', message: 'internal error' });
    });
  });
}
