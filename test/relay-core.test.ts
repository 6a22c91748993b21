import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toBase64Url, type RelayFrameOf } from '@backchannel/client-sdk/protocol';
import { openChannel, reconnected, type OpenChannel, type RawMember } from './support/members.js';
import { freePort } from './support/ports.js';
import { startTestRelay, type TestRelay } from './support/relay.js';

const commitment = (i: number): string => toBase64Url(new Uint8Array(32).fill(i % 251));

/** The database setups the relay supports: a server named by DATABASE_URL, and the embedded default. */
const setups: [string, () => Promise<{ relay: TestRelay; cleanup: () => Promise<void> }>][] = [
  ['a PostgreSQL given by DATABASE_URL', async () => ({ relay: await startTestRelay(), cleanup: async () => undefined })],
  [
    'the embedded PostgreSQL (no DATABASE_URL)',
    async () => {
      const dir = await mkdtemp(path.join(tmpdir(), 'bc-embedded-'));
      const relay = await startTestRelay({ BACKCHANNEL_DATA_DIR: dir, BACKCHANNEL_EMBEDDED_PG_PORT: String(await freePort()) }, {}, { embedded: true });
      return { relay, cleanup: () => rm(dir, { recursive: true, force: true }) };
    },
  ],
];

describe.each(setups)('relay core: store and forward on %s', (_name, setup) => {
  let relay: TestRelay;
  let cleanup: () => Promise<void>;
  let ch: OpenChannel;
  let alice: RawMember;
  let bob: RawMember;

  beforeAll(async () => {
    ({ relay, cleanup } = await setup());
    ch = await openChannel(relay.url, 2);
    [alice, bob] = ch.parties as [RawMember, RawMember];
  });
  afterAll(async () => {
    for (const p of [ch.host, alice, bob]) await p.conn.close();
    await relay.close();
    await cleanup();
  });

  const send = (i: number) =>
    alice.conn.request(
      {
        type: 'send',
        channel: ch.channel,
        clientMsgId: `m${i}`,
        headers: { [bob.key]: toBase64Url(new Uint8Array([i & 255, i >> 8])) },
        body: toBase64Url(new Uint8Array(64).fill(7)),
        commitment: commitment(i),
      },
      { retry: true },
    );

  it('delivers 1,000 envelopes exactly once in sequence order, 300 of them sent while the recipient was offline', async () => {
    const received: RelayFrameOf<'deliver'>[] = [];
    let last = 0;
    const handlers = {
      after: () => last,
      deliver: async (f: RelayFrameOf<'deliver'>) => {
        received.push(f);
        last = f.seq;
      },
    };
    await bob.conn.connect();
    bob.conn.subscribe(ch.channel, handlers);
    const acks = await Promise.all(Array.from({ length: 700 }, (_, i) => send(i)));
    await expect.poll(() => received.length, { timeout: 20_000 }).toBe(700);

    await bob.conn.close(); // offline
    acks.push(...(await Promise.all(Array.from({ length: 300 }, (_, i) => send(700 + i)))));
    bob = reconnected(relay.url, bob);
    await bob.conn.connect();
    bob.conn.subscribe(ch.channel, handlers);
    await expect.poll(() => received.length, { timeout: 20_000 }).toBe(1000);

    // Every send acked once with its own sequence: gap-free, no duplicate. (Concurrent sends may
    // be numbered out of issue order: one refused as `overloaded` is retried after the others.)
    expect(acks.map((a) => a.seq).sort((x, y) => x - y)).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
    expect(received.map((f) => f.seq)).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
    expect(received.every((f) => f.from === alice.key)).toBe(true);
    // Each delivery carries the same receipt-chain value its sender was acked with.
    const chainOf = new Map(acks.map((a) => [a.seq, a.chain]));
    expect(received.map((f) => f.chain)).toEqual(received.map((f) => chainOf.get(f.seq)));
  });

  it('answers a retried send with the first commit, not a new sequence', async () => {
    const first = await send(5000);
    const again = await send(5000);
    expect(again.duplicate).toBe(true);
    expect(again.seq).toBe(first.seq);
    expect(again.chain).toBe(first.chain);
  });
});
