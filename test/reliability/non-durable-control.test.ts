import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkSequences, LoadDriver } from '../support/load.js';
import { freePort } from '../support/ports.js';
import { startTestRelay, type TestRelay } from '../support/relay.js';
import { PostgresProcess } from './support/postgres-process.js';
import { figures, openChannels, sleep } from './support/scenario.js';

// D3. The checks of D1/D2 are only worth something if they can fail. Here PostgreSQL acknowledges
// commits before their WAL is written (synchronous_commit=off; the WAL writer wakes every 10 s
// and leaves the last partial WAL page in shared memory), and a kill -9 of every PostgreSQL
// process right after the last ack loses the newest commits. The same harness must see it.
const TRIALS = 5;

describe('D3: negative control on a non-durable database', () => {
  let dataDir: string;
  let postgres: PostgresProcess;
  let databaseUrl: string;

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'bc-d3-pg-'));
    postgres = new PostgresProcess(dataDir, await freePort(), { synchronous_commit: 'off', wal_writer_delay: '10000ms' });
    await postgres.start();
    databaseUrl = await postgres.createDatabase('backchannel_d3');
  }, 120_000);

  afterAll(async () => {
    await postgres?.stop().catch(() => undefined);
    await rm(dataDir, { recursive: true, force: true });
  });

  it('starts on a server with synchronous_commit=off, pinning it on for its own connections', async () => {
    const relay = await startTestRelay({ DATABASE_URL: databaseUrl });
    try {
      expect((await relay.context.db.pool.query<{ synchronous_commit: string }>('show synchronous_commit')).rows[0]?.synchronous_commit).toBe('on');
    } finally {
      await relay.close();
    }
  });

  it('detects acknowledged messages lost by a crash when the relay is forced onto it', { timeout: 180_000 }, async () => {
    const trials: { acked: number; rowsAfter: number; missing: number }[] = [];
    for (let t = 0; t < TRIALS; t++) {
      const relay: TestRelay = await startTestRelay({ DATABASE_URL: databaseUrl, BACKCHANNEL_LOG_LEVEL: 'warn' }, { unsafeAllowNonDurable: true });
      const channels = await openChannels(relay.url, 2, 3);
      const load = new LoadDriver(channels, { ratePerSender: 50, window: 4 });
      // One party per channel is offline during the load and comes for its backlog afterwards.
      const late = channels.map((_, i) => load.parties[i * 3]!);
      for (const p of late) {
        p.receiving = false;
        p.sending = false;
      }
      try {
        await load.connect();
        // Schema and channels made durable on purpose: only the messages are at risk.
        await postgres.checkpoint();
        load.start();
        await sleep(1_000);
        await load.stop();
        await postgres.kill9(); // right after the last ack
        await postgres.start();
        for (const p of late) {
          p.receiving = true;
          load.subscribe(p);
        }
        const drained = await load.drained(5_000);
        const v = load.violations();
        const seqs = await checkSequences(databaseUrl, channels.map((c) => c.channel));
        trials.push({ acked: load.report().acked, rowsAfter: seqs.reduce((n, s) => n + s.rows, 0), missing: v.missing.length });
        if (!drained && v.missing.length > 0) break;
      } finally {
        await load.close();
        await relay.close();
      }
    }
    figures('D3', { trials });
    const detected = trials.find((t) => t.missing > 0);
    // Both checks of D1/D2 fire: acked messages the late recipient never gets, and fewer rows than acks.
    expect(detected).toBeDefined();
    expect(detected!.rowsAfter).toBeLessThan(detected!.acked);
  });
});
