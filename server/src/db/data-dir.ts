import { randomBytes } from 'node:crypto';
import { chmod, chown, mkdir, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { OperatorError } from '../operator-error.js';

/** The unprivileged OS user the embedded PostgreSQL runs as when the relay runs as root. */
export interface OsUser {
  readonly uid: number;
  readonly gid: number;
}

const LOCK_FILE = 'backchannel.lock';
const CREDENTIALS_FILE = 'credentials.json';

const unusable = (dataDir: string, why: string, cause?: unknown): OperatorError =>
  new OperatorError('data_dir_unusable', `BACKCHANNEL_DATA_DIR ${dataDir}: ${why}`, cause === undefined ? undefined : { cause });

/** Can `user` enter the folder `dir` (execute permission by owner, group or other)? */
async function traversable(dir: string, user: OsUser): Promise<boolean> {
  const s = await stat(dir);
  if (s.uid === user.uid) return (s.mode & 0o100) !== 0;
  if (s.gid === user.gid) return (s.mode & 0o010) !== 0;
  return (s.mode & 0o001) !== 0;
}

/**
 * Creates the data folder (0700) or checks an existing one, and names what is wrong in one line:
 * a parent that is a file, a folder that cannot be created, or (as root) a parent the database's
 * own user cannot enter. As root, the folder is handed to that user.
 */
export async function prepareDataDir(dataDir: string, runAs: OsUser | undefined): Promise<void> {
  try {
    await makeFolders(dataDir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOTDIR' || code === 'EEXIST') throw unusable(dataDir, 'it or one of its parents is a file, not a folder', err);
    throw unusable(dataDir, `the folder cannot be created (${code ?? 'error'})`, err);
  }
  const s = await stat(dataDir);
  if (!s.isDirectory()) throw unusable(dataDir, 'it is a file, not a folder');
  if (runAs !== undefined) {
    for (let dir = path.dirname(dataDir); ; dir = path.dirname(dir)) {
      if (!(await traversable(dir, runAs))) {
        throw unusable(dataDir, `the embedded PostgreSQL runs as the system user postgres (uid ${runAs.uid}), which cannot enter ${dir}: allow it (chmod o+x) or choose another folder`);
      }
      if (dir === path.dirname(dir)) break;
    }
    await chown(dataDir, runAs.uid, runAs.gid);
  }
  if (s.uid === (process.getuid?.() ?? s.uid) || runAs !== undefined) await chmod(dataDir, 0o700);
}

/**
 * `mkdir -p`, one level at a time: Node's own recursive mkdir loops forever where a parent
 * refuses new entries with ENOENT (`/proc/nope` spun at 90 % CPU).
 */
async function makeFolders(dir: string): Promise<void> {
  const parent = path.dirname(dir);
  if (parent !== dir && !(await stat(parent).then((s) => s.isDirectory(), () => false))) await makeFolders(parent);
  try {
    await mkdir(dir, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
}

/** The start time of a process in clock ticks since boot (Linux), to tell a reused PID apart. */
export async function processStartTime(pid: number): Promise<string | undefined> {
  try {
    const text = await readFile(`/proc/${pid}/stat`, 'utf8');
    // pid (comm) state ppid … : comm may hold spaces, so count fields after the last ')'.
    return text.slice(text.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** Is `pid` alive (EPERM: alive, owned by someone else)? */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The live process holding the data folder's lock, if any. */
export async function lockHolder(dataDir: string): Promise<number | undefined> {
  let text: string;
  try {
    text = await readFile(path.join(dataDir, LOCK_FILE), 'utf8');
  } catch {
    return undefined;
  }
  const [pidText, started] = text.split('\n');
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return undefined;
  // The same PID with another start time is a different process: the lock is stale.
  if (started !== undefined && started !== '' && (await processStartTime(pid)) !== started) return undefined;
  return pid;
}

/** The data folder's lock, held by this process until released. */
export interface DataDirLock {
  release(): Promise<void>;
}

/**
 * Takes the data folder's exclusive lock: a file naming this process (PID and start time).
 * A lock whose process is gone is stale and taken over; one held by a live process refuses with
 * `data_dir_locked`, before anything in the folder is touched.
 */
export async function lockDataDir(dataDir: string): Promise<DataDirLock> {
  const file = path.join(dataDir, LOCK_FILE);
  const mine = `${process.pid}\n${(await processStartTime(process.pid)) ?? ''}\n`;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const handle = await open(file, 'wx', 0o600);
      await handle.writeFile(mine);
      await handle.close();
      return {
        async release() {
          const now = await readFile(file, 'utf8').catch(() => '');
          if (now === mine) await unlink(file).catch(() => undefined);
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw unusable(dataDir, `cannot write ${LOCK_FILE} (${(err as NodeJS.ErrnoException).code ?? 'error'})`, err);
    }
    const holder = await lockHolder(dataDir);
    if (holder !== undefined) {
      throw new OperatorError('data_dir_locked', `BACKCHANNEL_DATA_DIR ${dataDir} is in use by process ${holder} (a relay or an admin command): stop it first, or use another folder`);
    }
    await unlink(file).catch(() => undefined); // stale: its process is gone
  }
  throw new OperatorError('data_dir_locked', `BACKCHANNEL_DATA_DIR ${dataDir}: could not take ${LOCK_FILE} (another process keeps taking it)`);
}

/** The embedded database's roles and passwords, kept in the data folder (0600). */
export interface EmbeddedCredentials {
  /** The superuser: provisions roles; never used by the relay for its own work. */
  readonly adminUser: string;
  readonly adminPassword: string;
  /** The relay's role: owns its database and tables, no superuser, no CREATEROLE. */
  readonly relayUser: string;
  readonly relayPassword: string;
  readonly database: string;
}

/** A random password (32 bytes, base64url). */
export function randomPassword(): string {
  return randomBytes(32).toString('base64url');
}

/** Reads the credentials file, if the folder has one. */
export async function readCredentials(dataDir: string): Promise<EmbeddedCredentials | undefined> {
  let text: string;
  try {
    text = await readFile(path.join(dataDir, CREDENTIALS_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw unusable(dataDir, `cannot read ${CREDENTIALS_FILE} (${(err as NodeJS.ErrnoException).code ?? 'error'})`, err);
  }
  const parsed = JSON.parse(text) as Partial<EmbeddedCredentials>;
  const { adminUser, adminPassword, relayUser, relayPassword, database } = parsed;
  if (typeof adminUser !== 'string' || typeof adminPassword !== 'string' || typeof relayUser !== 'string' || typeof relayPassword !== 'string' || typeof database !== 'string') {
    throw unusable(dataDir, `${CREDENTIALS_FILE} is incomplete`);
  }
  return { adminUser, adminPassword, relayUser, relayPassword, database };
}

/** Writes the credentials file atomically, readable by this process's user only. */
export async function writeCredentials(dataDir: string, credentials: EmbeddedCredentials): Promise<void> {
  const file = path.join(dataDir, CREDENTIALS_FILE);
  const tmp = `${file}.${process.pid}.tmp`;
  const handle = await open(tmp, 'w', 0o600);
  try {
    await handle.writeFile(`${JSON.stringify(credentials, null, 2)}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(tmp, file);
}
