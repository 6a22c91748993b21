import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toBase64Url } from '@backchannel/client-sdk/protocol';
import { tempDir } from './support/cli-process.js';
import { openChannel, type OpenChannel } from '../support/members.js';
import { startTestRelay, type TestRelay } from '../support/relay.js';

/** Parses Prometheus text exposition: every sample line must be `name{labels} value`. */
function parse(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) {
      if (line.startsWith('#')) expect(line).toMatch(/^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+$/);
      continue;
    }
    // Values as Prometheus reads them (Go's ParseFloat: NaN in any case; prom-client writes `Nan`
    // for an event-loop mean with no samples yet).
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (-?[0-9.]+(?:e[+-]?[0-9]+)?|[Nn]a[Nn]|[+-]Inf)$/.exec(line);
    expect(m, `not a Prometheus sample: ${line}`).not.toBeNull();
    samples.set(m![1]!, Number(m![2]));
  }
  return samples;
}

describe('/metrics', () => {
  let relay: TestRelay;
  let ch: OpenChannel;
  beforeAll(async () => {
    relay = await startTestRelay({ BACKCHANNEL_METRICS_PORT: '0' });
    ch = await openChannel(relay.url, 2);
  });
  afterAll(async () => {
    for (const m of [ch.host, ...ch.parties]) await m.conn.close();
    await relay.close();
  });

  const scrape = async () => parse(await (await fetch(relay.metricsUrl!)).text());

  it('parses as Prometheus text and moves when traffic flows', async () => {
    const before = await scrape();
    const [alice, bob] = ch.parties as [OpenChannel['parties'][0], OpenChannel['parties'][0]];
    for (let i = 0; i < 10; i++) {
      await alice.conn.request({ type: 'send', channel: ch.channel, clientMsgId: `m${i}`, headers: { [bob.key]: 'AA' }, body: 'AA', commitment: toBase64Url(new Uint8Array(32)) });
    }
    await alice.conn.request({ type: 'group.get', channel: 'A'.repeat(22), from: 0 }).catch(() => undefined);
    const after = await scrape();
    const get = (m: Map<string, number>, k: string) => m.get(k) ?? 0;
    expect(get(after, 'backchannel_frames_in_total{type="send"}') - get(before, 'backchannel_frames_in_total{type="send"}')).toBe(10);
    expect(get(after, 'backchannel_frames_out_total{type="sent"}') - get(before, 'backchannel_frames_out_total{type="sent"}')).toBe(10);
    expect(get(after, 'backchannel_ack_latency_seconds_count') - get(before, 'backchannel_ack_latency_seconds_count')).toBe(10);
    const committed = (m: Map<string, number>) => get(m, 'backchannel_group_commit_batch_size_sum{path="fast"}') + get(m, 'backchannel_group_commit_batch_size_sum{path="locked"}');
    expect(committed(after) - committed(before)).toBe(10);
    // The first send of the channel reads its head under lock; every later one commits in one round trip.
    expect(get(after, 'backchannel_group_commit_batch_size_sum{path="fast"}') - get(before, 'backchannel_group_commit_batch_size_sum{path="fast"}')).toBeGreaterThanOrEqual(9);
    expect(get(after, 'backchannel_errors_total{code="channel_not_found"}')).toBeGreaterThanOrEqual(1);
    expect(get(after, 'backchannel_connections')).toBeGreaterThanOrEqual(3);
    expect(after.has('backchannel_queue_depth')).toBe(true);
    expect(after.has('backchannel_db_pool_clients{state="total"}')).toBe(true);
  });

  it('reports the real queue depth: messages a recipient has not acknowledged, back to 0 once it has', async () => {
    const [, bob] = ch.parties as [OpenChannel['parties'][0], OpenChannel['parties'][0]];
    const depth = async () => (await scrape()).get('backchannel_queue_depth');
    // The ten sends above are addressed to Bob, who has not subscribed yet (one sample serves 5 s).
    await expect.poll(depth, { timeout: 12_000, interval: 500 }).toBe(10);
    let got = 0;
    bob.conn.subscribe(ch.channel, { after: () => 0, deliver: async () => void got++ });
    await expect.poll(() => got, { timeout: 10_000 }).toBe(10);
    await expect.poll(depth, { timeout: 12_000, interval: 500 }).toBe(0);
  });

  it('is clean for `promtool check metrics`: conventional process_* and nodejs_* names, no _total gauges, a build-info metric', async () => {
    const text = await (await fetch(relay.metricsUrl!)).text();
    expect(text).toMatch(/^process_cpu_seconds_total \S+$/m);
    expect(text).toMatch(/^nodejs_heap_size_used_bytes \S+$/m);
    expect(text).not.toMatch(/backchannel_process_/);
    expect(text).toMatch(/^backchannel_build_info\{version="\d+\.\d+\.\d+[^"]*",nodejs="v\d+[^"]*"\} 1$/m);
    const promtool = '/usr/bin/promtool';
    // .ci/run installs Debian's prometheus package, which ships promtool.
    expect(existsSync(promtool), 'promtool is missing: apt-get install prometheus').toBe(true);
    const file = path.join(await tempDir(), 'metrics.txt');
    await writeFile(file, text);
    const result = await promisify(execFile)('sh', ['-c', `${promtool} check metrics < ${file}`]).then(
      (r) => ({ code: 0, out: r.stdout + r.stderr }),
      (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: e.stdout + e.stderr }),
    );
    expect(result.out).toBe('');
    expect(result.code).toBe(0);
  });

  it('reads live subscriptions at the scrape, not at the last heartbeat', async () => {
    const [alice] = ch.parties as [OpenChannel['parties'][0], OpenChannel['parties'][0]];
    const before = (await scrape()).get('backchannel_subscriptions') ?? 0;
    alice.conn.subscribe(ch.channel, { after: () => 0, deliver: async () => undefined });
    await expect.poll(async () => (await scrape()).get('backchannel_subscriptions'), { timeout: 2_000, interval: 100 }).toBeGreaterThan(before);
  });
});

describe('/metrics: the pool as it was before the scrape', () => {
  it('an idle relay shows every pool client idle and none waiting, on the scrape that samples the queue depth', async () => {
    const idle = await startTestRelay({ BACKCHANNEL_METRICS_PORT: '0' });
    try {
      await new Promise((r) => setTimeout(r, 300));
      // The first scrape runs the queue-depth query (one sample per 5 s): it must not count itself.
      const m = parse(await (await fetch(idle.metricsUrl!)).text());
      expect(m.get('backchannel_db_pool_clients{state="waiting"}')).toBe(0);
      expect(m.get('backchannel_db_pool_clients{state="idle"}')).toBe(m.get('backchannel_db_pool_clients{state="total"}'));
    } finally {
      await idle.close();
    }
  });
});

describe('/metrics is not public', () => {
  it('answers 404 on the client port by default, and with a token only to its bearer', async () => {
    const open = await startTestRelay();
    try {
      expect((await fetch(`${open.url}/metrics`)).status).toBe(404);
      expect(open.metricsUrl).toBeUndefined();
    } finally {
      await open.close();
    }
    const token = 'a-long-enough-metrics-token';
    const guarded = await startTestRelay({ BACKCHANNEL_METRICS_TOKEN: token });
    try {
      expect((await fetch(`${guarded.url}/metrics`)).status).toBe(401);
      expect((await fetch(`${guarded.url}/metrics`, { headers: { authorization: 'Bearer wrong-token-of-same-size!!' } })).status).toBe(401);
      const ok = await fetch(`${guarded.url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
      expect(ok.status).toBe(200);
      expect(await ok.text()).toContain('backchannel_connections');
    } finally {
      await guarded.close();
    }
  });
});
