import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toBase64Url } from '@backchannel/client-sdk/protocol';
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
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (-?[0-9.e+]+|NaN|[+-]Inf)$/.exec(line);
    expect(m, `not a Prometheus sample: ${line}`).not.toBeNull();
    samples.set(m![1]!, Number(m![2]));
  }
  return samples;
}

describe('/metrics', () => {
  let relay: TestRelay;
  let ch: OpenChannel;
  beforeAll(async () => {
    relay = await startTestRelay();
    ch = await openChannel(relay.url, 2);
  });
  afterAll(async () => {
    for (const m of [ch.host, ...ch.parties]) await m.conn.close();
    await relay.close();
  });

  const scrape = async () => parse(await (await fetch(`${relay.url}/metrics`)).text());

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
});
