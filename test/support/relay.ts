import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import pg from 'pg';
import { inject } from 'vitest';
import { loadConfig } from '../../server/src/config.js';
import { startRelay, type Relay, type RelayOptions } from '../../server/src/relay.js';

/** Creates an empty database in the suite's PostgreSQL and returns its URL. */
export async function createTestDatabase(): Promise<string> {
  const admin = inject('pgAdminUrl');
  const name = `bc_${randomBytes(6).toString('hex')}`;
  const client = new pg.Client({ connectionString: admin });
  await client.connect();
  try {
    await client.query(`create database ${name}`);
  } finally {
    await client.end();
  }
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return url.toString();
}

/** A relay started for a test, with every log line it wrote. */
export interface TestRelay extends Relay {
  readonly logs: string[];
}

/**
 * Starts a real relay on port 0 against a fresh (or the given) database, or, with
 * `embedded: true`, on its own embedded PostgreSQL (BACKCHANNEL_DATA_DIR and
 * BACKCHANNEL_EMBEDDED_PG_PORT must then be given).
 */
export async function startTestRelay(env: Record<string, string> = {}, options: RelayOptions = {}, how: { embedded?: boolean } = {}): Promise<TestRelay> {
  const databaseUrl = how.embedded === true ? undefined : (env.DATABASE_URL ?? (await createTestDatabase()));
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      logs.push(...chunk.toString().split('\n').filter((l) => l !== ''));
      done();
    },
  });
  const config = loadConfig({ BACKCHANNEL_PORT: '0', BACKCHANNEL_LOG_LEVEL: 'debug', ...env, ...(databaseUrl === undefined ? {} : { DATABASE_URL: databaseUrl }) });
  const relay = await startRelay(config, { logDestination: sink, ...options });
  return Object.assign(relay, { logs });
}
