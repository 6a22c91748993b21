import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkSequences, LoadDriver } from '../support/load.js';
import type { OpenChannel } from '../support/members.js';
import { freePort } from '../support/ports.js';
import { RelayProcess } from '../support/relay-process.js';
import { PostgresProcess } from './support/postgres-process.js';
import { between, CLEAN, figures, LONG, openChannels, sleep, summary } from './support/scenario.js';

// D2. CI: 3 database crashes, 2–3 s of downtime each; BC_LONG=1: 10 crashes.
const CRASHES = LONG ? 10 : 3;
/** The relay must serve again within this long after PostgreSQL accepts connections. */
const RECOVERY_BOUND_MS = 10_000;
/** Acks of commits that were already on their way when PostgreSQL died may still arrive this long after. */
const IN_FLIGHT_GRACE_MS = 500;

async function readyStatus(url: string): Promise<number> {
  try {
    const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(2_000) });
    return res.status;
  } catch {
    return 0;
  }
}

describe('D2: PostgreSQL killed -9 under load', () => {
  let dataDir: string;
  let postgres: PostgresProcess;
  let relay: RelayProcess;
  let databaseUrl: string;
  let channels: OpenChannel[];
  let load: LoadDriver;

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'bc-d2-pg-'));
    postgres = new PostgresProcess(dataDir, await freePort());
    await postgres.start();
    databaseUrl = await postgres.createDatabase('backchannel_d2');
    relay = new RelayProcess(await freePort(), { DATABASE_URL: databaseUrl }, ['notify_lost', 'notify_reconnected']);
    await relay.start();
    channels = await openChannels(relay.url, 10, 5);
    load = new LoadDriver(channels, { ratePerSender: 20, window: 4 });
    await load.connect();
  }, 180_000);

  afterAll(async () => {
    await load?.close();
    await relay?.kill9();
    await postgres?.stop().catch(() => undefined);
    await rm(dataDir, { recursive: true, force: true });
  });

  it(`acks nothing while the database is down, reports not ready, recovers, and loses nothing across ${CRASHES} crashes`, { timeout: LONG ? 900_000 : 150_000 }, async () => {
    load.start();
    const crashes: { acksWhileDown: number; notReadySeen: boolean; readyAfterMs: number; firstAckAfterMs: number }[] = [];
    for (let k = 0; k < CRASHES; k++) {
      await sleep(between(2_000, 4_000));
      await postgres.kill9();
      const downAt = Date.now();
      let notReadySeen = false;
      const downFor = between(2_000, 3_000);
      while (Date.now() - downAt < downFor) {
        if ((await readyStatus(relay.url)) === 503) notReadySeen = true;
        await sleep(200);
      }
      const acksWhileDown = load.ackedBetween(downAt + IN_FLIGHT_GRACE_MS, Date.now());
      await postgres.start();
      const upAt = Date.now();
      let readyAfterMs = -1;
      while (Date.now() - upAt < RECOVERY_BOUND_MS * 2) {
        if ((await readyStatus(relay.url)) === 200) {
          readyAfterMs = Date.now() - upAt;
          break;
        }
        await sleep(100);
      }
      let firstAckAfterMs = -1;
      while (Date.now() - upAt < RECOVERY_BOUND_MS * 2) {
        if (load.lastAckAt() > upAt) {
          firstAckAfterMs = load.lastAckAt() - upAt;
          break;
        }
        await sleep(50);
      }
      crashes.push({ acksWhileDown, notReadySeen, readyAfterMs, firstAckAfterMs });
    }
    await sleep(2_000);
    await load.stop();
    const drained = await load.drained(60_000);
    const report = load.report();
    const seqs = await checkSequences(databaseUrl, channels.map((c) => c.channel));
    const s = summary(load.violations(), seqs, report);
    figures('D2', { crashes, drained, ...report, dbRows: seqs.reduce((n, c) => n + c.rows, 0), notifyEvents: relay.events.length });

    for (const c of crashes) {
      expect(c.acksWhileDown).toBe(0);
      expect(c.notReadySeen).toBe(true);
      expect(c.readyAfterMs).toBeGreaterThanOrEqual(0);
      expect(c.readyAfterMs).toBeLessThan(RECOVERY_BOUND_MS);
      expect(c.firstAckAfterMs).toBeGreaterThanOrEqual(0);
      expect(c.firstAckAfterMs).toBeLessThan(RECOVERY_BOUND_MS);
    }
    // The notification connection was lost and restored each time (multi-node wake-ups work again).
    expect(relay.events.filter((e) => e.event === 'notify_reconnected').length).toBeGreaterThanOrEqual(CRASHES);
    expect(drained).toBe(true);
    expect({ ...s, acked: undefined }).toEqual({ ...CLEAN, acked: undefined });
    expect(report.acked).toBe(report.sent);
    expect(seqs.reduce((n, c) => n + c.rows, 0)).toBe(report.acked);
    // The relay process itself never went down: recovery was the relay's own doing.
    expect(relay.starts).toBe(1);
  });
});
