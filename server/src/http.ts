import type { IncomingMessage, ServerResponse } from 'node:http';
import { AUTH_PATHS, toBase64Url } from '@backchannel/client-sdk/protocol';
import type { Authenticator } from './auth.js';
import type { RelayContext } from './context.js';
import { recordKeyHistory } from './store/relay-keys.js';

/** Extra HTTP routes mounted by later features (formal record, viewer page). */
export type RouteHandler = (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<boolean>;

/** Writes a JSON answer. */
export function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** The relay's HTTP surface: health, readiness, metrics, challenges, its public keys. */
export function httpHandler(ctx: RelayContext, auth: Authenticator, isReady: () => Promise<boolean>, extra: RouteHandler[]) {
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
          const text = await ctx.metrics.registry.metrics();
          res.writeHead(200, { 'content-type': ctx.metrics.registry.contentType });
          res.end(text);
          return;
        }
        case AUTH_PATHS.challenge:
          json(res, 200, auth.challenge());
          return;
        case '/.well-known/backchannel.json': {
          const history = await recordKeyHistory(ctx.db);
          json(res, 200, {
            protocol: 1,
            authKey: toBase64Url(ctx.keys.auth.publicKey),
            recordKey: toBase64Url(ctx.keys.record.publicKey),
            // Every record key the relay has used, newest first: old records stay verifiable.
            recordKeys: history.map((k) => toBase64Url(k.publicKey)),
          });
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
