import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toBase64Url } from '@backchannel/client-sdk/protocol';
import { openChannel, reconnected, type OpenChannel, type RawMember } from '../support/members.js';
import { freePort } from '../support/ports.js';
import { RelayProcess } from '../support/relay-process.js';
import { createTestDatabase } from '../support/relay.js';
import { figures, LONG } from './support/scenario.js';

// D9. A member offline for N messages of 4 KiB (CI: 20,000 = 80 MB of ciphertext; BC_LONG=1:
// 100,000 = 400 MB) comes back and drains them. Loading the backlog at once would cost the
// relay several times its size in heap; paging (256 at a time, next page on ack) costs one page.
const N = LONG ? 100_000 : 20_000;
const BODY = 4096;
const HEAP_BOUND = 100 * 1024 * 1024;
/** /metrics is served on the client port only to the bearer of this token. */
const METRICS_TOKEN = 'backlog-test-metrics-token';

async function relayMemory(url: string): Promise<{ heap: number; rss: number }> {
  const text = await (await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).text();
  const value = (name: string): number => Number(new RegExp(`^${name} (\\S+)`, 'm').exec(text)?.[1] ?? NaN);
  return { heap: value('nodejs_heap_size_used_bytes'), rss: value('process_resident_memory_bytes') };
}

describe('D9: backlog drain', () => {
  let relay: RelayProcess;
  let ch: OpenChannel;
  let alice: RawMember;
  let bob: RawMember;

  beforeAll(async () => {
    relay = new RelayProcess(await freePort(), { DATABASE_URL: await createTestDatabase(), BACKCHANNEL_LOG_LEVEL: 'warn', BACKCHANNEL_METRICS_TOKEN: METRICS_TOKEN });
    await relay.start();
    ch = await openChannel(relay.url, 2);
    [alice, bob] = ch.parties as [RawMember, RawMember];
    await ch.host.conn.close();
    await bob.conn.close(); // offline from the start
  }, 60_000);
  afterAll(async () => {
    await alice?.conn.close();
    await bob?.conn.close();
    await relay?.kill9();
  });

  it(`delivers a ${N.toLocaleString('en')}-message backlog in order, completely, with bounded relay memory`, { timeout: LONG ? 1_800_000 : 150_000 }, async () => {
    const body = toBase64Url(new Uint8Array(BODY).fill(0x42));
    const fillStart = performance.now();
    for (let i = 0; i < N; i += 500) {
      await Promise.all(
        Array.from({ length: Math.min(500, N - i) }, (_, j) =>
          alice.conn.request(
            {
              type: 'send',
              channel: ch.channel,
              clientMsgId: `b${i + j}`,
              headers: { [bob.key]: toBase64Url(new Uint8Array(4)) },
              body,
              commitment: toBase64Url(new Uint8Array(32).fill((i + j) & 255)),
            },
            { retry: true },
          ),
        ),
      );
    }
    const fillMs = performance.now() - fillStart;

    const base = await relayMemory(relay.url);
    let peak = { ...base };
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const m = await relayMemory(relay.url);
        peak = { heap: Math.max(peak.heap, m.heap), rss: Math.max(peak.rss, m.rss) };
        await new Promise((r) => setTimeout(r, 100));
      }
    })();

    bob = reconnected(relay.url, bob);
    const seqs: number[] = [];
    let last = 0;
    let emptyAt = -1;
    const drainStart = performance.now();
    await bob.conn.connect();
    bob.conn.subscribe(ch.channel, {
      after: () => last,
      deliver: async (f) => {
        seqs.push(f.seq);
        last = f.seq;
      },
      queueEmpty: (seq) => {
        if (emptyAt < 0) emptyAt = seq;
      },
    });
    await expect.poll(() => emptyAt, { timeout: LONG ? 1_500_000 : 120_000, interval: 200 }).toBe(N);
    const drainMs = performance.now() - drainStart;
    sampling = false;
    await sampler;

    const mb = (b: number): number => Math.round(b / 1024 / 1024);
    figures('D9', {
      messages: N,
      bodyBytes: BODY,
      fillMs: Math.round(fillMs),
      drainMs: Math.round(drainMs),
      drainPerSec: Math.round((N * 1000) / drainMs),
      heapBaseMB: mb(base.heap),
      heapPeakMB: mb(peak.heap),
      rssBaseMB: mb(base.rss),
      rssPeakMB: mb(peak.rss),
    });
    expect(seqs.length).toBe(N);
    expect(seqs.every((s, i) => s === i + 1)).toBe(true);
    expect(Number.isFinite(peak.heap)).toBe(true);
    expect(peak.heap - base.heap).toBeLessThan(HEAP_BOUND);
  });
});
