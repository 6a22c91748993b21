/**
 * The public formal feed streams (issue 14, item 5): an unauthenticated socket on a long formal
 * log is sent records a page at a time with backpressure, so a reader that stops reading makes
 * the relay hold a bounded number of bytes for it, not the whole log; it still gets every record
 * once it reads again, and new ones after.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { sodium, sodiumReady } from '@backchannel/client-sdk';
import { toBase64Url } from '@backchannel/client-sdk/protocol';
import { appendRecord } from '../../server/src/disclosure/formal-log.js';
import { FEED_LIMITS } from '../../server/src/disclosure/feed.js';
import { openChannel, type OpenChannel } from '../support/members.js';
import { startTestRelay, type TestRelay } from '../support/relay.js';
import { until } from '../support/sdk.js';

const RECORDS = 400;
const TEXT = 'x'.repeat(15_000);

describe('the public formal feed streams a long log with backpressure', () => {
  let relay: TestRelay;
  let ch: OpenChannel;

  /** Appends one communiqué to the channel's formal log, as a publication does (hashed, chained, signed by the relay). */
  async function append(): Promise<void> {
    const random = (n: number) => toBase64Url(sodium.randombytes_buf(n));
    await relay.context.db.kysely.transaction().execute((trx) =>
      appendRecord(trx, relay.context.keys.record, {
        v: 2,
        channel: ch.channel,
        proposalId: random(16),
        kind: 'communique',
        text: TEXT,
        contentHash: random(32),
        rangeFrom: 0,
        rangeTo: 0,
        releaseAt: 0,
        publishedAt: Date.now(),
        epoch: 1,
        stateHash: random(32),
        parties: [toBase64Url(ch.parties[0]!.sign.publicKey)],
        consents: [{ signKey: toBase64Url(ch.parties[0]!.sign.publicKey), sig: random(64) }],
      }),
    );
  }

  /** The relay's peak unsent bytes on one feed socket, from /metrics. */
  async function peakBuffered(): Promise<number> {
    const text = await (await fetch(relay.metricsUrl!)).text();
    const line = text.split('\n').find((l) => l.startsWith('backchannel_formal_feed_buffered_bytes_peak '));
    expect(line).toBeDefined();
    return Number(line!.split(' ')[1]);
  }

  beforeAll(async () => {
    await sodiumReady();
    relay = await startTestRelay({ BACKCHANNEL_METRICS_PORT: '0' });
    ch = await openChannel(relay.url, 2);
    for (let i = 0; i < RECORDS; i++) await append();
  });
  afterAll(async () => {
    for (const m of [ch.host, ...ch.parties]) await m.conn.close();
    await relay.close();
  });

  it(`holds at most the high-water mark and one record for a reader that stops reading, and delivers all ${RECORDS} records once it reads again`, async () => {
    const received: number[] = [];
    const ws = new WebSocket(`${relay.url.replace(/^http/, 'ws')}/v1/formal/ws?channel=${ch.channel}`);
    ws.on('message', (data: Buffer) => received.push((JSON.parse(data.toString()) as { record: { index: number } }).record.index));
    await new Promise((resolve) => ws.once('open', resolve));
    ws.pause(); // stop reading: the kernel's buffers fill, then the relay's would
    await new Promise((r) => setTimeout(r, 1_500));
    expect(received.length).toBeLessThan(RECORDS);
    const bound = FEED_LIMITS.highWaterBytes + 2 * TEXT.length;
    expect(await peakBuffered()).toBeGreaterThan(0);
    expect(await peakBuffered()).toBeLessThanOrEqual(bound);

    ws.resume();
    await until(() => received.length === RECORDS);
    expect(received).toEqual(Array.from({ length: RECORDS }, (_, i) => i));
    await append(); // a record appended later still arrives
    await until(() => received.length === RECORDS + 1);
    expect(await peakBuffered()).toBeLessThanOrEqual(bound);
    ws.close();
  });
});
