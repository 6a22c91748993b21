import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toBase64Url, type RelayFrameOf } from '@backchannel/client-sdk/protocol';
import { openChannel, reconnected, type RawMember } from '../support/members.js';
import { createTestDatabase, startTestRelay, type TestRelay } from '../support/relay.js';

const bytes = (n: number, fill: number): string => toBase64Url(new Uint8Array(n).fill(fill));

/** What one member received, in arrival order. */
function collect(member: RawMember, channel: string): RelayFrameOf<'deliver'>[] {
  const received: RelayFrameOf<'deliver'>[] = [];
  member.conn.subscribe(channel, {
    after: () => received.at(-1)?.seq ?? 0,
    deliver: async (f) => {
      received.push(f);
    },
  });
  return received;
}

// The bench's scale-out mode (bench/src/scale-out.ts): two relay nodes on one PostgreSQL, the
// two parties of a channel on different nodes, so every message crosses nodes through NOTIFY.
describe('two relay nodes on one database', () => {
  let a: TestRelay;
  let b: TestRelay;
  let alice: RawMember;
  let bob: RawMember;
  let host: RawMember;
  let channel: string;

  beforeAll(async () => {
    const databaseUrl = await createTestDatabase();
    a = await startTestRelay({ DATABASE_URL: databaseUrl });
    b = await startTestRelay({ DATABASE_URL: databaseUrl });
    const ch = await openChannel(a.url, 2);
    channel = ch.channel;
    host = ch.host;
    [alice, bob] = ch.parties as [RawMember, RawMember];
    await bob.conn.close();
    bob = reconnected(b.url, bob); // bob now talks to node B, alice stays on node A
    await bob.conn.connect();
  });
  afterAll(async () => {
    for (const m of [host, alice, bob]) await m?.conn.close();
    await b?.close();
    await a?.close();
  });

  it('delivers messages both ways between a member on node A and a member on node B, in sequence order', async () => {
    const atAlice = collect(alice, channel);
    const atBob = collect(bob, channel);
    const send = (from: RawMember, to: RawMember, i: number) =>
      from.conn.request(
        { type: 'send', channel, clientMsgId: `${from === alice ? 'a' : 'b'}${i}`, headers: { [to.key]: bytes(16, i) }, body: bytes(1024, i), commitment: bytes(32, i) },
        { retry: true },
      );
    const acks = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? send(alice, bob, i) : send(bob, alice, i))));

    await expect.poll(() => atBob.length, { timeout: 15_000 }).toBe(20);
    await expect.poll(() => atAlice.length, { timeout: 15_000 }).toBe(20);
    // One gap-free sequence across both nodes.
    expect(acks.map((x) => x.seq).sort((x, y) => x - y)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    for (const [got, from] of [[atBob, alice], [atAlice, bob]] as const) {
      const seqs = got.map((f) => f.seq);
      expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
      expect(got.every((f) => f.from === from.key)).toBe(true);
      // Each delivery carries the chain value its sender was acked with, whichever node acked it.
      for (const f of got) expect(f.chain).toBe(acks.find((x) => x.seq === f.seq)?.chain);
    }
  });
});
