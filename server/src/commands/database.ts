import path from 'node:path';
import type { Config } from '../config.js';
import { connectDb, type Db } from '../db/connect.js';
import { runningEmbeddedUrl, startEmbeddedPostgres } from '../db/embedded.js';
import { migrationStatus } from '../db/migrate.js';

/** A database opened by an admin command; `close()` also stops an embedded server it started. */
export interface AdminDatabase {
  readonly db: Db;
  close(): Promise<void>;
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
  const running = await runningEmbeddedUrl(dataDir);
  if (running !== undefined) {
    const db = connectDb(running, 2);
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
