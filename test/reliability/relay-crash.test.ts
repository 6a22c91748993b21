import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkSequences, LoadDriver } from '../support/load.js';
import type { OpenChannel } from '../support/members.js';
import { freePort } from '../support/ports.js';
import { RelayProcess } from '../support/relay-process.js';
import { createTestDatabase } from '../support/relay.js';
import { between, CLEAN, figures, LONG, openChannels, sleep, summary } from './support/scenario.js';

// D1, count-based (how fast the relay is, is the bench's business): the relay is killed after
// every STRETCH more acknowledged messages (a random share of it, so kills land anywhere in a
// batch's life), KILLS times, then the load runs until TOTAL are acknowledged, and every send
// is waited for. CI: 5 kills; BC_LONG=1: 20 kills.
const KILLS = LONG ? 20 : 5;
const STRETCH = LONG ? 4_000 : 1_000;
const TOTAL = (KILLS + 1) * STRETCH;

/** Resolves once the load has `n` acknowledged messages (polled; no time bound but the test's). */
async function untilAcked(load: LoadDriver, n: number): Promise<void> {
  while (load.report().acked < n) await sleep(25);
}

describe('D1: relay killed -9 under load', () => {
  let relay: RelayProcess;
  let databaseUrl: string;
  let channels: OpenChannel[];
  let load: LoadDriver;

  beforeAll(async () => {
    databaseUrl = await createTestDatabase();
    relay = new RelayProcess(await freePort(), { DATABASE_URL: databaseUrl });
    await relay.start();
    channels = await openChannels(relay.url, 10, 5);
    // 50 senders × 20/s = 1,000 messages/s offered, each fanned out to 4 recipients.
    load = new LoadDriver(channels, { ratePerSender: 20, window: 4 });
    await load.connect();
  }, 120_000);

  afterAll(async () => {
    await load?.close();
    await relay?.kill9();
  });

  it(`loses no acknowledged message, keeps sequences gap-free and per-sender order across ${KILLS} kills`, { timeout: LONG ? 900_000 : 150_000 }, async () => {
    load.start();
    const downtimes: number[] = [];
    const ackedAtKill: number[] = [];
    for (let k = 0; k < KILLS; k++) {
      await untilAcked(load, k * STRETCH + between(STRETCH / 2, STRETCH));
      ackedAtKill.push(load.report().acked);
      const t = performance.now();
      await relay.restart();
      downtimes.push(Math.round(performance.now() - t));
    }
    await untilAcked(load, TOTAL); // a last stretch of clean load after the final restart
    await load.stop();
    const drained = await load.drained(60_000);
    const report = load.report();
    const seqs = await checkSequences(databaseUrl, channels.map((c) => c.channel));
    const s = summary(load.violations(), seqs, report);
    figures('D1', { kills: KILLS, ackedAtKill, downtimeMs: downtimes, drained, ...report, dbRows: seqs.reduce((n, c) => n + c.rows, 0) });

    expect(drained).toBe(true);
    expect(relay.starts).toBe(KILLS + 1);
    expect({ ...s, acked: undefined }).toEqual({ ...CLEAN, acked: undefined });
    // Every message was retried until acked, so each is exactly one row: no row without its ack, none twice.
    expect(report.acked).toBe(report.sent);
    expect(seqs.reduce((n, c) => n + c.rows, 0)).toBe(report.acked);
    // Every kill came after more acknowledged messages than the one before: all of them under load.
    expect(ackedAtKill.every((n, i) => i === 0 || n > ackedAtKill[i - 1]!)).toBe(true);
    expect(report.acked).toBeGreaterThanOrEqual(TOTAL);
  });
});
