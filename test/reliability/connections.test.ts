import { afterAll, describe, expect, it } from 'vitest';
import { LoadDriver, checkSequences } from '../support/load.js';
import { nodeConnection } from '../support/members.js';
import { startTestRelay, type TestRelay } from '../support/relay.js';
import { TcpProxy } from './support/tcp-proxy.js';
import { CLEAN, figures, LONG, openChannels, sleep, summary } from './support/scenario.js';

// D7/D8. Every client reaches the relay through a TCP proxy that misbehaves on command.
const HEARTBEAT_MS = 500;
const CHURN_SECONDS = LONG ? 120 : 15;

describe('D7: dropped and half-open connections', () => {
  let relay: TestRelay;
  let proxy: TcpProxy;
  let load: LoadDriver;
  afterAll(async () => {
    await load?.close();
    await proxy?.close();
    await relay?.close();
  });

  it('delivers everything while 5 % of sockets drop and 1 % go half-open each second; half-open ones are cut within two heartbeats', { timeout: LONG ? 900_000 : 120_000 }, async () => {
    relay = await startTestRelay({ BACKCHANNEL_LOG_LEVEL: 'warn', BACKCHANNEL_HEARTBEAT_MS: String(HEARTBEAT_MS) });
    proxy = new TcpProxy(relay.port);
    await proxy.start();
    const channels = await openChannels(relay.url, 10, 5);
    load = new LoadDriver(channels, { ratePerSender: 10, window: 4 }, (m) => nodeConnection(proxy.url, m.dh));
    await load.connect();
    load.start();
    let dropped = 0;
    // Fractional expectations carry over, so 5 % of 50 sockets is 2.5 drops a second on average.
    let dropDebt = 0;
    let holeDebt = 0;
    for (let s = 0; s < CHURN_SECONDS; s++) {
      await sleep(1_000);
      const live = proxy.live().sort(() => Math.random() - 0.5);
      dropDebt += live.length * 0.05;
      holeDebt += live.length * 0.01;
      for (; dropDebt >= 1 && live.length > 0; dropDebt--, dropped++) proxy.drop(live.pop()!);
      // Half-open WebSockets only: an idle HTTP keep-alive connection (a challenge fetch) is
      // closed by the relay's keep-alive timeout (5 s), not by its heartbeat.
      const sockets = live.filter((p) => p.webSocket);
      for (; holeDebt >= 1 && sockets.length > 0; holeDebt--) proxy.setMode(sockets.pop()!, 'blackhole');
    }
    await sleep(2 * HEARTBEAT_MS + 1_500);
    await load.stop();
    const drained = await load.drained(60_000);
    const report = load.report();
    const seqs = await checkSequences(relay.databaseUrl, channels.map((c) => c.channel));
    const halfOpen = proxy.faulted.map((p) => (p.upstreamClosedAt ?? Infinity) - p.faultAt!);
    figures('D7', { seconds: CHURN_SECONDS, dropped, halfOpen: halfOpen.length, halfOpenCutMs: halfOpen, drained, ...report });

    expect(halfOpen.length).toBeGreaterThanOrEqual(Math.floor(CHURN_SECONDS * 0.5 * 0.9));
    // Two heartbeats, plus generous slack for a loaded 2-core machine; never "not at all".
    for (const ms of halfOpen) expect(ms).toBeLessThan(2 * HEARTBEAT_MS + 1_500);
    expect(drained).toBe(true);
    expect({ ...summary(load.violations(), seqs, report), acked: undefined }).toEqual({ ...CLEAN, acked: undefined });
    expect(report.acked).toBe(report.sent);
  });
});

describe('D8: members that stop reading', () => {
  let relay: TestRelay;
  let slowProxy: TcpProxy;
  let load: LoadDriver;
  afterAll(async () => {
    await load?.close();
    await slowProxy?.close();
    await relay?.close();
  });

  it('cuts a reader that stopped at its buffer bound, keeps everyone else flowing, and the reader later resumes completely', { timeout: 120_000 }, async () => {
    const BOUND = 64 * 1024;
    relay = await startTestRelay({ BACKCHANNEL_LOG_LEVEL: 'warn', BACKCHANNEL_SLOW_CONSUMER_BYTES: String(BOUND) });
    slowProxy = new TcpProxy(relay.port);
    await slowProxy.start();
    const channels = await openChannels(relay.url, 5, 4);
    const slowKeys = new Set(channels.map((c) => c.parties[0]!.key));
    // Big bodies fill the kernel's socket buffers (several MB on loopback) in a few seconds.
    load = new LoadDriver(channels, { ratePerSender: 15, window: 4, bodyBytes: 32 * 1024 }, (m) => nodeConnection(slowKeys.has(m.key) ? slowProxy.url : relay.url, m.dh));
    for (const p of load.parties) if (slowKeys.has(p.member.key)) p.sending = false;
    await load.connect();
    load.start();
    await sleep(500);
    for (const pair of slowProxy.live()) slowProxy.setMode(pair, 'stall');
    slowProxy.defaultMode = 'stall';
    const cuts = (): string[] => relay.logs.filter((l) => l.includes('"event":"slow_consumer"'));
    await expect.poll(() => cuts().length, { timeout: 60_000, interval: 200 }).toBeGreaterThanOrEqual(slowKeys.size);
    const buffered = cuts().map((l) => (JSON.parse(l) as { buffered: number }).buffered);
    // Meanwhile every other member got everything acked so far.
    const others = load.parties.filter((p) => !slowKeys.has(p.member.key));
    for (const p of load.parties) if (slowKeys.has(p.member.key)) p.receiving = false;
    const othersDrained = await load.drained(30_000);
    const othersReport = load.report();

    // The readers read again: their sockets flow, close (the relay cut them), and they resume.
    slowProxy.defaultMode = 'forward';
    for (const pair of slowProxy.pairs) slowProxy.setMode(pair, 'forward');
    for (const p of load.parties) if (slowKeys.has(p.member.key)) p.receiving = true;
    await sleep(2_000);
    await load.stop();
    const drained = await load.drained(90_000);
    const report = load.report();
    const seqs = await checkSequences(relay.databaseUrl, channels.map((c) => c.channel));
    figures('D8', { slowReaders: slowKeys.size, others: others.length, cuts: buffered.length, bufferedAtCut: buffered, othersDrained, othersDeliverLatencyMs: othersReport.deliverLatencyMs, drained, ...report });

    expect(buffered.every((b) => b > BOUND)).toBe(true);
    expect(othersDrained).toBe(true);
    expect(drained).toBe(true);
    expect({ ...summary(load.violations(), seqs, report), acked: undefined }).toEqual({ ...CLEAN, acked: undefined });
  });
});
