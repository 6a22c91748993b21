// What an integrator sees when the relay cannot be reached or refuses it: a stable code, the
// underlying cause, a bounded wait without an AbortSignal, and nothing left running afterwards.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { BackchannelError, MemoryKeyStore, convene, join, type FetchLike } from '@backchannel/client-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../support/ports.js';
import { startTestRelay, type TestRelay } from '../support/relay.js';
import { nodePlatform } from '../support/sdk.js';

const repo = fileURLToPath(new URL('../../', import.meta.url));

/** The rejection of `call`, and how long it took. */
async function failure(call: Promise<unknown>): Promise<{ err: BackchannelError; ms: number }> {
  const t0 = performance.now();
  const err = await call.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(BackchannelError);
  return { err: err as BackchannelError, ms: performance.now() - t0 };
}

/** The messages of an error and its causes. */
function causes(err: unknown): string {
  const out: string[] = [];
  for (let e = err, i = 0; e instanceof Error && i < 6; e = e.cause, i++) out.push(`${e.message} ${(e as { code?: string }).code ?? ''}`);
  return out.join(' <- ');
}

describe('connection failures an integrator can see', () => {
  let relay: TestRelay;
  let notFound: Server;
  let notFoundUrl: string;
  let refusedUrl: string;

  beforeAll(async () => {
    relay = await startTestRelay();
    notFound = createServer((_req, res) => res.writeHead(404, { 'content-type': 'text/plain' }).end('no such page'));
    await new Promise<void>((resolve) => notFound.listen(0, '127.0.0.1', resolve));
    notFoundUrl = `http://127.0.0.1:${(notFound.address() as AddressInfo).port}`;
    refusedUrl = `http://127.0.0.1:${await freePort()}`;
  });
  afterAll(async () => {
    notFound?.closeAllConnections();
    await new Promise((resolve) => notFound?.close(resolve));
    await relay?.close();
  });

  it('a malformed relay URL fails at once with bad_argument', async () => {
    for (const bad of ['not a url', 'relay.example.org:8787', 'ftp://relay.example.org', '']) {
      const { err, ms } = await failure(convene({ relay: bad, store: new MemoryKeyStore(), platform: nodePlatform }));
      expect(err.code, bad).toBe('bad_argument');
      expect(ms).toBeLessThan(1_000);
    }
  });

  it('a ws:// URL is read as http://', async () => {
    const host = await convene({ relay: relay.url.replace(/^http:/, 'ws:'), store: new MemoryKeyStore(), platform: nodePlatform });
    await host.close();
  });

  it('a refused port fails with unavailable within the default bound, without a signal, carrying the cause', async () => {
    const { err, ms } = await failure(convene({ relay: refusedUrl, store: new MemoryKeyStore(), platform: nodePlatform }));
    expect(err.code).toBe('unavailable');
    expect(ms).toBeGreaterThan(9_000);
    expect(ms).toBeLessThan(12_000);
    expect(causes(err)).toMatch(/ECONNREFUSED/);
  });

  it('an HTTP server that is no relay (404) fails with unavailable at once', async () => {
    const { err, ms } = await failure(convene({ relay: notFoundUrl, store: new MemoryKeyStore(), platform: nodePlatform }));
    expect(err.code).toBe('unavailable');
    expect(err.message).toMatch(/404/);
    expect(ms).toBeLessThan(2_000);
  });

  it('a 401 at the upgrade is fatal, with auth_failed', async () => {
    // A challenge with another relay key: the proof cannot verify, the relay answers 401.
    const fetch: FetchLike = async (url, init) => {
      const res = await globalThis.fetch(url, init);
      const body = (await res.json()) as Record<string, unknown>;
      return { ok: res.ok, status: res.status, json: async () => ({ ...body, relayKey: randomBytes(32).toString('base64url') }) };
    };
    const { err, ms } = await failure(convene({ relay: relay.url, store: new MemoryKeyStore(), platform: { ...nodePlatform, fetch } }));
    expect(err.code).toBe('auth_failed');
    expect(causes(err)).toMatch(/401/);
    expect(ms).toBeLessThan(2_000);
  });

  it('failed convene and join close what they opened: a process with only failures exits by itself', async () => {
    const host = await convene({ relay: relay.url, store: new MemoryKeyStore(), platform: nodePlatform });
    const invite = await host.invite();
    const first = await join({ invite, store: new MemoryKeyStore(), platform: nodePlatform });
    await Promise.all([first.close(), host.close()]);

    const child = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', 'test/sdk/fixtures/failing-entry-points.ts', invite, refusedUrl, notFoundUrl], { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = await new Promise<number | string>((resolve) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        resolve('still running after 20 s');
      }, 20_000);
      child.on('exit', (code) => {
        clearTimeout(timer);
        resolve(code ?? 'signal');
      });
    });
    expect(exited, stderr).toBe(0);
    expect(JSON.parse(stdout.trim().split('\n').at(-1)!)).toEqual({ inviteUsed: 'invite_used', abortedWhileRefused: 'aborted', refused: 'unavailable', notFound: 'unavailable', malformed: 'bad_argument' });
  });
});
