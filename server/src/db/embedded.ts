import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { isAlive, lockDataDir, lockHolder, prepareDataDir, randomPassword, readCredentials, writeCredentials, type EmbeddedCredentials } from './data-dir.js';
import { clearLeftover, databaseOsUser, initialise, startPostmaster, type Leftover, type Postmaster } from './embedded-process.js';
import { LEGACY_ADMIN, localUrl, provisionRoles } from './embedded-roles.js';

/** A running embedded PostgreSQL and how to reach and stop it. */
export interface EmbeddedDatabase {
  /** The relay's URL: its own role (no superuser) on its own database. */
  readonly url: string;
  /** The superuser's URL (the `postgres` database), for provisioning and tests; never the relay's. */
  readonly adminUrl: string;
  /** The PostgreSQL data folder itself (inside the relay's data folder). */
  readonly pgDir: string;
  /** What was found of a previous run (a leftover server stopped, a stale pid file removed). */
  readonly leftover: Leftover;
  /** Stops the server (fast shutdown: committed data is safe) and releases the folder's lock. */
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

const RELAY_ROLE = 'backchannel_relay';

/**
 * Where PostgreSQL keeps its files: `<dataDir>/postgres`, or `dataDir` itself for a folder
 * initialised before the relay kept its lock and credentials beside them.
 */
function pgDirOf(dataDir: string): { pgDir: string; legacy: boolean } {
  return existsSync(path.join(dataDir, 'PG_VERSION')) ? { pgDir: dataDir, legacy: true } : { pgDir: path.join(dataDir, 'postgres'), legacy: false };
}

async function credentialsFor(dataDir: string, legacy: boolean): Promise<EmbeddedCredentials> {
  const existing = await readCredentials(dataDir);
  if (existing !== undefined) return existing;
  const fresh: EmbeddedCredentials = {
    adminUser: legacy ? LEGACY_ADMIN.user : 'postgres',
    adminPassword: randomPassword(),
    relayUser: RELAY_ROLE,
    relayPassword: randomPassword(),
    // An old folder's tables are in `postgres`; a new folder gets a database of its own.
    database: legacy ? 'postgres' : 'backchannel',
  };
  // Written before initdb or provisioning use it: a crash in between never loses the password.
  await writeCredentials(dataDir, fresh);
  return fresh;
}

/**
 * Starts (initialising on first use) a real PostgreSQL on 127.0.0.1 with its data in `dataDir`:
 * takes the folder's lock (a second start refuses and touches nothing), clears what a crash left
 * (only a process proven to be this folder's postmaster is stopped), and provisions a superuser
 * and the relay's own role, each with a random password kept in `dataDir/credentials.json`
 * (0600; the folder is 0700).
 */
export async function startEmbeddedPostgres(options: EmbeddedOptions): Promise<EmbeddedDatabase> {
  const dataDir = path.resolve(options.dataDir);
  const runAs = await databaseOsUser();
  await prepareDataDir(dataDir, runAs);
  const lock = await lockDataDir(dataDir);
  let postmaster: Postmaster | undefined;
  try {
    const { pgDir, legacy } = pgDirOf(dataDir);
    const credentials = await credentialsFor(dataDir, legacy);
    if (!existsSync(path.join(pgDir, 'PG_VERSION'))) await initialise(pgDir, credentials.adminUser, credentials.adminPassword, runAs);
    const leftover = await clearLeftover(pgDir);
    postmaster = await startPostmaster(pgDir, options.port, options.settings ?? {}, runAs, options.onLog ?? (() => undefined));
    await provisionRoles(credentials, options.port);
    const running = postmaster;
    return {
      url: localUrl(credentials.relayUser, credentials.relayPassword, options.port, credentials.database),
      adminUrl: localUrl(credentials.adminUser, credentials.adminPassword, options.port, 'postgres'),
      pgDir,
      leftover,
      async stop() {
        await running.stop();
        await lock.release();
      },
    };
  } catch (err) {
    await postmaster?.stop().catch(() => undefined);
    await lock.release();
    throw err;
  }
}

/**
 * The relay's URL of an embedded PostgreSQL a live process (a relay) runs on `dataDir`, so an
 * admin command joins it instead of starting a second server; undefined when none runs.
 */
export async function runningEmbeddedUrl(dataDir: string): Promise<string | undefined> {
  const holder = await lockHolder(dataDir);
  if (holder === undefined) return undefined;
  const { pgDir } = pgDirOf(dataDir);
  const lines = (await readFile(path.join(pgDir, 'postmaster.pid'), 'utf8').catch(() => '')).split('\n');
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  const credentials = await readCredentials(dataDir);
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid) || !Number.isInteger(port) || port <= 0 || credentials === undefined) return undefined;
  return localUrl(credentials.relayUser, credentials.relayPassword, port, credentials.database);
}
