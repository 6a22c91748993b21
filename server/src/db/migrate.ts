import { readdir } from 'node:fs/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Migrator, type Migration, type MigrationProvider, type MigrationResultSet } from 'kysely';
import type { Db } from './connect.js';

/** The repository's `migrations/` folder. */
export const MIGRATIONS_DIR = fileURLToPath(new URL('../../../migrations/', import.meta.url));

/**
 * Loads `migrations/*.ts` with our own `import()`, not kysely's FileMigrationProvider: its
 * import runs inside node_modules, where a test runner's TypeScript loader does not reach.
 */
const provider: MigrationProvider = {
  async getMigrations(): Promise<Record<string, Migration>> {
    const files = (await readdir(MIGRATIONS_DIR)).filter((f) => /^\d{4}-.*\.ts$/.test(f) && !f.endsWith('.d.ts')).sort();
    const out: Record<string, Migration> = {};
    for (const file of files) {
      out[file.replace(/\.ts$/, '')] = (await import(pathToFileURL(MIGRATIONS_DIR + file).href)) as Migration;
    }
    return out;
  },
};

function migrator(db: Db): Migrator {
  return new Migrator({ db: db.kysely, provider });
}

function check(result: MigrationResultSet): MigrationResultSet {
  if (result.error !== undefined) {
    const failed = result.results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new Error(`migration ${failed} failed`, { cause: result.error });
  }
  return result;
}

/** Runs every pending migration; throws (never half-starts) if one fails. */
export async function migrateToLatest(db: Db): Promise<MigrationResultSet> {
  return check(await migrator(db).migrateToLatest());
}

/** Migrates up or down to exactly `name` (a backup's schema, before its rows go in). */
export async function migrateTo(db: Db, name: string): Promise<MigrationResultSet> {
  return check(await migrator(db).migrateTo(name));
}

/** Reverts the last migration. */
export async function migrateDown(db: Db): Promise<MigrationResultSet> {
  return check(await migrator(db).migrateDown());
}

/** Lists migrations and whether each has run. */
export async function migrationStatus(db: Db): Promise<{ name: string; executedAt: Date | undefined }[]> {
  const all = await migrator(db).getMigrations();
  return all.map((m) => ({ name: m.name, executedAt: m.executedAt }));
}
