import { chmod, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { localUrl } from '../../server/src/db/embedded-roles.js';
import { freePort } from '../support/ports.js';
import { createTestDatabase, startTestRelay } from '../support/relay.js';
import { tempDir } from './support/cli-process.js';

async function admin<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

const metric = async (url: string, name: string): Promise<number> => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(await (await fetch(url)).text())?.[1]);

describe('durability while running', () => {
  let parent = '';
  afterAll(async () => {
    if (parent !== '') await rm(parent, { recursive: true, force: true });
  });

  it('fsync turned off and reloaded while running: /readyz 503 within a second and the metric reads 0; back on: 200 and 1', async () => {
    // A database of the test's own: ALTER SYSTEM changes the whole server.
    parent = await tempDir('bc-durable-');
    await chmod(parent, 0o755);
    const dataDir = path.join(parent, 'data');
    const pgPort = await freePort();
    const relay = await startTestRelay({ BACKCHANNEL_DATA_DIR: dataDir, BACKCHANNEL_EMBEDDED_PG_PORT: String(pgPort), BACKCHANNEL_METRICS_PORT: '0', BACKCHANNEL_DURABILITY_CHECK_MS: '200' }, {}, { embedded: true });
    const c = JSON.parse(await readFile(path.join(dataDir, 'credentials.json'), 'utf8')) as { adminUser: string; adminPassword: string };
    const adminUrl = localUrl(c.adminUser, c.adminPassword, pgPort, 'postgres');
    try {
      expect((await fetch(`${relay.url}/readyz`)).status).toBe(200);
      expect(await metric(relay.metricsUrl!, 'backchannel_database_durable')).toBe(1);
      await admin(adminUrl, async (a) => {
        await a.query('alter system set fsync = off');
        await a.query('select pg_reload_conf()');
      });
      const off = Date.now();
      await expect.poll(async () => (await fetch(`${relay.url}/readyz`)).status, { timeout: 1_000, interval: 50 }).toBe(503);
      expect(Date.now() - off).toBeLessThan(1_000);
      await expect.poll(() => metric(relay.metricsUrl!, 'backchannel_database_durable'), { timeout: 2_000, interval: 100 }).toBe(0);
      expect(relay.logs.some((l) => l.includes('"event":"database_not_durable"') && l.includes('"setting":"fsync"'))).toBe(true);

      await admin(adminUrl, async (a) => {
        await a.query('alter system reset fsync');
        await a.query('select pg_reload_conf()');
      });
      await expect.poll(async () => (await fetch(`${relay.url}/readyz`)).status, { timeout: 2_000, interval: 50 }).toBe(200);
      await expect.poll(() => metric(relay.metricsUrl!, 'backchannel_database_durable'), { timeout: 2_000, interval: 100 }).toBe(1);
    } finally {
      await relay.close();
    }
  });

  it('runs every connection with synchronous_commit=on, even where the database default is off', async () => {
    const databaseUrl = await createTestDatabase();
    const name = new URL(databaseUrl).pathname.slice(1);
    await admin(inject('pgAdminUrl'), (a) => a.query(`alter database ${name} set synchronous_commit = off`));
    const relay = await startTestRelay({ DATABASE_URL: databaseUrl, BACKCHANNEL_DB_POOL: '4' });
    try {
      // Hold every pool connection at once, so each one is checked, not just the first.
      const clients = await Promise.all(Array.from({ length: 4 }, () => relay.context.db.pool.connect()));
      try {
        for (const client of clients) expect((await client.query<{ synchronous_commit: string }>('show synchronous_commit')).rows[0]?.synchronous_commit).toBe('on');
      } finally {
        for (const client of clients) client.release();
      }
      // A plain session on the same database does get the default: the pin is the relay's own.
      expect(await admin(databaseUrl, async (a) => (await a.query<{ synchronous_commit: string }>('show synchronous_commit')).rows[0]?.synchronous_commit)).toBe('off');
    } finally {
      await relay.close();
    }
  });
});
