import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { fromBase64Url, toBase64Url } from '@backchannel/client-sdk/protocol';
import type { RelayContext } from '../context.js';
import { json, type RouteHandler } from '../http.js';
import { recordKeyChain, recordKeyHistory } from '../store/relay-keys.js';
import { readCheckpoints } from './checkpoints.js';
import { readRecords } from './formal-log.js';
import { VIEWER_SCRIPT, viewerPage } from './viewer-page.js';

const SDK_ENTRY = fileURLToPath(new URL('../../../client-sdk/src/index.ts', import.meta.url));
let bundle: Promise<string> | undefined;

/** The SDK as one browser ES module, built once on first request (the viewer page verifies with it). */
export function sdkBundle(): Promise<string> {
  bundle ??= build({ entryPoints: [SDK_ENTRY], bundle: true, format: 'esm', platform: 'browser', conditions: ['source'], write: false, minify: true, logLevel: 'silent' }).then(
    (out) => out.outputFiles[0]!.text,
  );
  bundle.catch(() => {
    bundle = undefined;
  });
  return bundle;
}

function channelParam(text: string | undefined): Uint8Array | undefined {
  const bytes = text === undefined ? undefined : fromBase64Url(text);
  return bytes?.length === 16 ? bytes : undefined;
}

/**
 * Public, read-only HTTP views of the formal record: the log as JSON, one record, the page that
 * shows and verifies it in the browser, and the SDK bundle that page uses.
 */
export function formalRoutes(ctx: RelayContext): RouteHandler[] {
  return [
    async (_req, res, url) => {
      const m = /^\/v1\/formal\/([A-Za-z0-9_-]+)(?:\/(\d+))?$/.exec(url.pathname);
      if (m === null) return false;
      const channel = channelParam(m[1]);
      if (channel === undefined) {
        json(res, 404, { code: 'not_found', message: 'no such channel' });
        return true;
      }
      if (m[2] !== undefined) {
        const [record] = await readRecords(ctx.db.kysely, channel, Number(m[2]));
        if (record === undefined || record.index !== Number(m[2])) json(res, 404, { code: 'not_found', message: 'no such record' });
        else json(res, 200, record);
        return true;
      }
      const [records, keys, chain, group, checkpoints] = await Promise.all([
        readRecords(ctx.db.kysely, channel),
        recordKeyHistory(ctx.db),
        recordKeyChain(ctx.db),
        ctx.db.kysely.selectFrom('group_log').select('entry').where('channel_id', '=', channel).orderBy('epoch').execute(),
        readCheckpoints(ctx.db.kysely, channel),
      ]);
      // The group log proves who the parties were at each record: verifiers replay it from the
      // genesis they pinned (the channel's fingerprint), so nothing here needs to be trusted.
      json(res, 200, { channel: toBase64Url(channel), records, relayKeys: keys.map((k) => toBase64Url(k.publicKey)), relayKeyChain: chain, group: group.map((g) => g.entry), checkpoints });
      return true;
    },
    async (_req, res, url) => {
      const m = /^\/formal\/([A-Za-z0-9_-]+)$/.exec(url.pathname);
      if (m === null) return false;
      if (channelParam(m[1]) === undefined) {
        json(res, 404, { code: 'not_found', message: 'no such channel' });
        return true;
      }
      const html = viewerPage(m[1]!);
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-security-policy': "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'unsafe-inline'; connect-src *", 'cache-control': 'no-store' });
      res.end(html);
      return true;
    },
    async (_req, res, url) => {
      if (url.pathname !== '/sdk/viewer.js') return false;
      res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'no-store' });
      res.end(VIEWER_SCRIPT);
      return true;
    },
    async (_req, res, url) => {
      if (url.pathname !== '/sdk/backchannel.js') return false;
      const text = await sdkBundle();
      res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'public, max-age=300' });
      res.end(text);
      return true;
    },
  ];
}
