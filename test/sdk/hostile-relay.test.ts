import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nextReceiptChain, reopen, sodiumReady } from '@backchannel/client-sdk';
import { fromBase64Url, toBase64Url, type RelayFrameOf } from '@backchannel/client-sdk/protocol';
import { startHostileProxy, type HostileProxy } from '../support/hostile-proxy.js';
import { startTestRelay, type TestRelay } from '../support/relay.js';
import { convenedChannel, nodePlatform, observe, until, type Party } from '../support/sdk.js';

type Deliver = RelayFrameOf<'deliver'>;

const flipBit = (b64: string, bit: number): string => {
  const bytes = fromBase64Url(b64)!;
  bytes[(bit >> 3) % bytes.length]! ^= 1 << (bit & 7);
  return toBase64Url(bytes);
};

describe('a hostile relay is detected by every affected recipient', () => {
  let relay: TestRelay;
  let proxy: HostileProxy;
  let alice: Party;
  let bob: Party;
  let carol: Party;
  const bobDeliveries: Deliver[] = [];

  beforeAll(async () => {
    await sodiumReady();
    relay = await startTestRelay();
    proxy = await startHostileProxy(relay.url);
    const ch = await convenedChannel(proxy.url, 3);
    [alice, bob, carol] = ch.parties as [Party, Party, Party];
    await ch.host.close();
  });
  afterAll(async () => {
    for (const p of [alice, bob, carol]) await p.client.close();
    await proxy.close();
    await relay.close();
  });

  /** Alice sends one message; `tamper` may rewrite (or drop) Bob's copy only. */
  async function aliceSends(text: string, tamper?: (d: Deliver) => Deliver[]): Promise<number> {
    proxy.tamper = {
      toClient: (frame, link) => {
        if (frame.type !== 'deliver' || link.member !== bob.client.memberKey || frame.from !== alice.client.memberKey) return [frame];
        const out = tamper?.(frame) ?? [frame];
        bobDeliveries.push(frame);
        return out;
      },
    };
    const sent = await alice.client.sendText(text);
    await until(() => carol.messages.some((m) => m.seq === sent.seq));
    await until(() => bobDeliveries.some((d) => d.seq === sent.seq));
    await new Promise((r) => setTimeout(r, 50));
    proxy.tamper = {};
    return sent.seq;
  }
  const bobAlarmsAt = (seq: number) => bob.alarms.filter((a) => a.seq === seq).map((a) => a.code);
  const bobGot = (seq: number) => bob.messages.find((m) => m.seq === seq);

  it('detects a swapped body', async () => {
    await aliceSends('first');
    const earlier = bobDeliveries.at(-1)!;
    const seq = await aliceSends('second', (d) => [{ ...d, body: earlier.body }]);
    expect(bobAlarmsAt(seq)).toContain('integrity_body_hash');
    expect(bobGot(seq)).toBeUndefined();
    expect(carol.messages.find((m) => m.seq === seq)?.content).toEqual({ kind: 'text', text: 'second' });
  });

  for (const field of ['header', 'body', 'commitment', 'chain', 'receivedAt', 'from'] as const) {
    it(`detects one flipped bit in the ${field}`, async () => {
      await aliceSends('clean before'); // so Bob knows the previous receipt-chain value
      const bit = Math.floor(Math.random() * 256);
      const seq = await aliceSends(`tampered ${field}`, (d) => {
        switch (field) {
          case 'receivedAt':
            return [{ ...d, receivedAt: d.receivedAt ^ (1 << (bit % 20)) }];
          case 'from':
            return [{ ...d, from: carol.client.memberKey }];
          default:
            return [{ ...d, [field]: flipBit(d[field], bit) }];
        }
      });
      expect(bobAlarmsAt(seq).length, `alarms at ${seq}: ${JSON.stringify(bob.alarms)}`).toBeGreaterThan(0);
      const got = bobGot(seq);
      if (got !== undefined) expect(got.content).toEqual({ kind: 'text', text: `tampered ${field}` }); // authentic text; the alarm is about the relay
    });
  }

  it('detects a dropped message (a gap in the sender counter) and a reordered pair', async () => {
    await aliceSends('before drop');
    const dropped = await aliceSends('dropped for Bob', () => []);
    const after = await aliceSends('after drop');
    expect(bobGot(dropped)).toBeUndefined();
    expect(bobAlarmsAt(after)).toContain('integrity_gap');

    // Reorder: hold one message back and deliver it after the next, under swapped sequence numbers.
    let held: Deliver | undefined;
    const s1 = await aliceSends('reorder one', (d) => {
      held = d;
      return [];
    });
    const s2 = await aliceSends('reorder two', (d) => [{ ...d, seq: s1 }, { ...held!, seq: d.seq }]);
    await until(() => bob.alarms.some((a) => a.seq === s1) && bob.alarms.some((a) => a.seq === s2));
    const codes = [...bobAlarmsAt(s1), ...bobAlarmsAt(s2)];
    expect(codes.some((c) => c === 'integrity_reorder' || c === 'integrity_gap')).toBe(true);
  });

  it('detects a relay that shows Bob a different history than Alice (a forked receipt chain)', async () => {
    await aliceSends('fork base');
    let fake: string | undefined;
    const forked = await aliceSends('fork point', (d) => {
      const prev = bobDeliveries.at(-1)!;
      // A self-consistent but different history for Bob: another receipt time, chain recomputed.
      const receivedAt = d.receivedAt + 1;
      fake = toBase64Url(nextReceiptChain(fromBase64Url(prev.chain)!, d.seq, fromBase64Url(d.commitment)!, receivedAt));
      return [{ ...d, receivedAt, chain: fake }];
    });
    expect(fake).toBeDefined();
    expect(bobAlarmsAt(forked)).toEqual([]); // locally consistent: nothing to see yet
    const next = await aliceSends('quotes the real chain');
    await until(() => bob.alarms.some((a) => a.code === 'integrity_fork'));
    expect(bob.alarms.filter((a) => a.code === 'integrity_fork').some((a) => a.seq === next)).toBe(true);
  });

  it('loses nothing to a delivery numbered far past the rest: the jump raises integrity_gap and later messages still arrive', async () => {
    const jumped = await aliceSends('numbered past everything', (d) => [{ ...d, seq: d.seq + 1_000_000_000 }]);
    expect(bobGot(jumped + 1_000_000_000)?.content).toEqual({ kind: 'text', text: 'numbered past everything' });
    const after = [await aliceSends('after the jump, one'), await aliceSends('after the jump, two')];
    await until(() => after.every((seq) => bobGot(seq) !== undefined));
    expect(after.map((seq) => bobGot(seq)?.content)).toEqual([
      { kind: 'text', text: 'after the jump, one' },
      { kind: 'text', text: 'after the jump, two' },
    ]);
    expect(after.flatMap(bobAlarmsAt)).toContain('integrity_gap');
  });

  it('detects a replayed message, also after the recipient restarts', async () => {
    const seq = await aliceSends('to be replayed');
    const original = bobDeliveries.find((d) => d.seq === seq)!;
    // Replay under a fresh sequence number, first to the running client...
    const replaySeq = 1_000_000;
    await injectTo(bob, { ...original, seq: replaySeq });
    await until(() => bob.alarms.some((a) => a.seq === replaySeq));
    expect(bobAlarmsAt(replaySeq)).toContain('integrity_replay');

    // ...then to a client restarted from its store.
    await bob.client.close();
    const restarted = observe(await reopen({ channel: bob.client.id, store: bob.store, platform: nodePlatform }), bob.store);
    bob = restarted;
    await injectTo(bob, { ...original, seq: replaySeq + 1 });
    await until(() => bob.alarms.some((a) => a.seq === replaySeq + 1));
    expect(bobAlarmsAt(replaySeq + 1)).toContain('integrity_replay');
  });

  /** Makes the proxy push `frame` to the member's live socket (on its next relay frame). */
  async function injectTo(p: Party, frame: Deliver): Promise<void> {
    let done = false;
    proxy.tamper = {
      toClient: (f, link) => {
        if (!done && link.member === p.client.memberKey) {
          done = true;
          return [f, frame];
        }
        return [f];
      },
    };
    // Any relay frame to the member carries the injection: ask for the group log.
    await p.client.refreshGroup();
    await until(() => done);
    proxy.tamper = {};
  }
});
