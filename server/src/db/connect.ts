import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { Database } from './schema.js';

// bigint (int8) as string is pg's default; keep it, and convert at the edge where we know the range.

/** A database handle: the kysely instance and the pool under it. */
export interface Db {
  readonly kysely: Kysely<Database>;
  readonly pool: pg.Pool;
}

/**
 * Opens a pool (sized for the relay's own work) and a kysely instance over it. Every connection
 * runs with `synchronous_commit=on` whatever the server's or role's default (a commit is
 * acknowledged to a sender only once it is on disk), unless `durable` is false (test only).
 */
export function connectDb(connectionString: string, poolSize: number, durable = true): Db {
  const pool = new pg.Pool({ connectionString, max: poolSize, connectionTimeoutMillis: 5_000, ...(durable ? { options: '-c synchronous_commit=on' } : {}) });
  // An idle client's error (e.g. Postgres restarting) must not crash the process; the pool drops it.
  pool.on('error', () => undefined);
  // A client checked out of the pool (every kysely query, every group commit) has no error
  // listener of pg-pool's: if PostgreSQL dies mid-query, pg emits 'error' on it and, unheard,
  // that kills the process. The query itself still fails, and the pool drops the dead client on
  // release, so the listener only has to exist.
  pool.on('connect', (client) => client.on('error', () => undefined));
  const kysely = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return { kysely, pool };
}
