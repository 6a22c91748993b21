import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { AUTH_PATHS } from '@backchannel/client-sdk/protocol';
import { createTestDatabase, startTestRelay } from '../support/relay.js';

/** Transactions committed so far in the database (PostgreSQL's own statistics). */
async function commits(databaseUrl: string): Promise<number> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ n: string }>('select xact_commit as n from pg_stat_database where datname = current_database()');
    return Number(rows[0]?.n);
  } finally {
    await client.end();
  }
}

describe('HTTP: /.well-known from memory, and a rate limit', () => {
  it('serves 500 /.well-known requests at concurrency 100 with a handful of database queries, not one each', async () => {
    const databaseUrl = await createTestDatabase();
    const relay = await startTestRelay({ DATABASE_URL: databaseUrl, BACKCHANNEL_DB_POOL: '2', BACKCHANNEL_HTTP_RATE_BURST: '100000' });
    try {
      await fetch(`${relay.url}/.well-known/backchannel.json`);
      await new Promise((r) => setTimeout(r, 1_200)); // statistics reach pg_stat_database about once a second
      const before = await commits(databaseUrl);
      const statuses: number[] = [];
      for (let round = 0; round < 5; round++) {
        statuses.push(...(await Promise.all(Array.from({ length: 100 }, async () => (await fetch(`${relay.url}/.well-known/backchannel.json`)).status))));
      }
      await new Promise((r) => setTimeout(r, 1_200));
      const used = (await commits(databaseUrl)) - before - 1; // minus our own reading
      expect(statuses.every((s) => s === 200)).toBe(true);
      // Background work (durability re-check, key reload) and a cache refresh or two, not 500.
      expect(used).toBeLessThan(50);
    } finally {
      await relay.close();
    }
  });

  it('answers 429 rate_limited past the per-address burst; health probes are never limited', async () => {
    const relay = await startTestRelay({ BACKCHANNEL_HTTP_RATE_PER_SEC: '1', BACKCHANNEL_HTTP_RATE_BURST: '5' });
    try {
      const answers = [];
      for (let i = 0; i < 10; i++) answers.push(await fetch(`${relay.url}${AUTH_PATHS.challenge}`));
      expect(answers.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 429, 429, 429, 429, 429]);
      expect(await answers[9]!.json()).toMatchObject({ code: 'rate_limited' });
      expect(answers[9]!.headers.get('retry-after')).toBe('1');
      for (let i = 0; i < 10; i++) {
        expect((await fetch(`${relay.url}/healthz`)).status).toBe(200);
        expect((await fetch(`${relay.url}/readyz`)).status).toBe(200);
      }
    } finally {
      await relay.close();
    }
  });
});
