import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startEmbeddedPostgres } from '../../server/src/db/embedded.js';
import { freePort } from '../../server/src/net/free-port.js';

/**
 * The systems under test, each in its own process so that their CPU and memory can be read
 * from /proc: a real embedded PostgreSQL (fsync and synchronous_commit on, its defaults) in a
 * temporary folder, the real relay (`server/src/cli.ts start`) against it, and the ceiling
 * forwarder. Loopback only.
 */

/** The repository root (bench/src/ is two levels down). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Node flags that run TypeScript sources directly, as `npm start` does. */
export const TSX_FLAGS = ['--conditions=source', '--import', 'tsx'];

export { freePort };

/** A bench-owned PostgreSQL. */
export interface BenchDatabase {
  readonly url: string;
  /** The postmaster's pid (its backends are its children). */
  readonly pid: number;
  stop(): Promise<void>;
}

/** Starts an embedded PostgreSQL in a fresh temporary folder, removed again by `stop()`. */
export async function startDatabase(settings: Record<string, string> = {}): Promise<BenchDatabase> {
  const dir = await mkdtemp(path.join(tmpdir(), 'bc-bench-pg-'));
  const pg = await startEmbeddedPostgres({ dataDir: dir, port: await freePort(), settings: { max_connections: '200', ...settings } });
  const pid = Number(readFileSync(path.join(pg.pgDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  return {
    url: pg.adminUrl,
    pid,
    stop: async () => {
      await pg.stop().catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A child process that announced `{"event":"ready","url":…}` on stdout. */
export interface ServiceProcess {
  readonly url: string;
  readonly pid: number;
  readonly child: ChildProcess;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process has exited. */
  stop(graceMs?: number): Promise<void>;
}

/** Spawns `node <flags> <script> <args>` from the repo root and waits for its ready line. */
export function spawnService(script: string, args: string[], env: Record<string, string>, nodeFlags: string[] = [], timeoutMs = 60_000): Promise<ServiceProcess> {
  const child = spawn(process.execPath, [...TSX_FLAGS, ...nodeFlags, script, ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (graceMs = 10_000): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  };
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      void stop(1_000);
      reject(new Error(`${script} did not become ready in ${timeoutMs} ms:\n${err.slice(-2000)}`));
    }, timeoutMs);
    child.stderr!.on('data', (d: Buffer) => {
      err = (err + d.toString()).slice(-8000);
    });
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      for (;;) {
        const nl = out.indexOf('\n');
        if (nl < 0) break;
        const line = out.slice(0, nl);
        out = out.slice(nl + 1);
        try {
          const msg = JSON.parse(line) as { event?: string; url?: string };
          if (msg.event === 'ready' && typeof msg.url === 'string') {
            clearTimeout(timer);
            resolve({ url: msg.url, pid: child.pid!, child, stop });
          }
        } catch {
          // Log lines of the relay (JSON too, without event 'ready'): ignored.
        }
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited (${code ?? signal}) before it was ready:\n${err.slice(-2000)}`));
    });
  });
}

/** Options for a relay under test. */
export interface RelayProcessOptions {
  readonly databaseUrl: string;
  /** Extra environment (e.g. BACKCHANNEL_DB_POOL). */
  readonly env?: Record<string, string>;
  /** Write a V8 CPU profile (.cpuprofile) of the relay into this folder when it exits. */
  readonly cpuProfDir?: string;
}

/** The bearer token the bench's relays serve `/metrics` to (loopback only, bench only). */
export const BENCH_METRICS_TOKEN = 'bench-metrics-token-loopback-only';

/**
 * Starts the real relay as `node … server/src/cli.ts start` on a free port, rate limits raised
 * out of the way (the bench measures the relay's capacity, not its flood protection).
 */
export function startRelayProcess(options: RelayProcessOptions): Promise<ServiceProcess> {
  const env: Record<string, string> = {
    BACKCHANNEL_PORT: '0',
    BACKCHANNEL_HOST: '127.0.0.1',
    DATABASE_URL: options.databaseUrl,
    BACKCHANNEL_RATE_PER_SEC: '1000000',
    BACKCHANNEL_RATE_BURST: '1000000',
    BACKCHANNEL_HTTP_RATE_PER_SEC: '1000000',
    BACKCHANNEL_HTTP_RATE_BURST: '1000000',
    // /metrics is not public: the bench reads it (the commit-pipeline trace) with this token.
    BACKCHANNEL_METRICS_TOKEN: BENCH_METRICS_TOKEN,
    BACKCHANNEL_LOG_LEVEL: 'warn',
    ...options.env,
  };
  const flags = options.cpuProfDir !== undefined ? ['--cpu-prof', '--cpu-prof-dir', options.cpuProfDir] : [];
  return spawnService('server/src/cli.ts', ['start'], env, flags);
}

/** Starts the ceiling forwarder in its own process. */
export function startCeilingProcess(): Promise<ServiceProcess> {
  return spawnService('bench/src/ceiling-forwarder.ts', ['0'], {});
}
