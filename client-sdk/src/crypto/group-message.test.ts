import { beforeAll, describe, expect, it } from 'vitest';
import { LIMITS, fromBase64Url, fromUtf8, toBase64Url, utf8 } from '../protocol/index.js';
import type { ErrorCode } from '../protocol/index.js';
import { sodiumReady } from '../sodium.js';
import { MAX_REMEMBERED_RECEIPTS, createGroupState, recordReceipt, type GroupState } from './group-state.js';
import {
  forgeGroupMessage,
  openGroupMessage,
  recipientsNeedingSession,
  sealGroupMessage,
  startSession,
  type GroupDelivery,
  type OpenGroupResult,
  type SealedGroupMessage,
} from './group-message.js';
import { verifyOpening } from './franking.js';
import { generateMemberKeys } from './member-keys.js';
import { addOneTimePrekeys, createPrekeyState, currentSignedPrekey, rotateSignedPrekey } from './prekeys.js';
import { RECEIPT_CHAIN_GENESIS, nextReceiptChain } from './receipt-chain.js';
import { MemoryKeyStore } from '../keystore/memory-key-store.js';
import { RATCHET_NONCE_BYTES, encodeRatchetHeader } from './double-ratchet.js';
import { derivePairKey, openEnvelope, sealEnvelope, type OpenedEnvelope } from './header-envelope.js';

/** A group state reference for sealing outside a channel (these tests exercise the crypto layer only). */
const NO_GROUP = { epoch: 0, stateHash: toBase64Url(new Uint8Array(32)) };

const channel = toBase64Url(new Uint8Array(16).fill(3));

/** A test double of the relay: prekey bundles, sequence numbers and the receipt chain. */
class FakeRelay {
  seq = 0;
  chain: Uint8Array = RECEIPT_CHAIN_GENESIS;
  now = 1_700_000_000_000;
  private handedOut = new Set<string>();

  bundle(owner: GroupState) {
    const otk = Object.values(owner.prekeys.oneTime).find((p) => !this.handedOut.has(`${owner.self.dhPublic}/${p.id}`));
    if (otk) this.handedOut.add(`${owner.self.dhPublic}/${otk.id}`);
    return {
      member: owner.self.dhPublic,
      signKey: owner.self.signPublic,
      signedPrekey: currentSignedPrekey(owner.prekeys)!,
      oneTimePrekey: otk ? { id: otk.id, key: otk.publicKey } : null,
    };
  }

  /** Commits a message: returns the ack and one delivery per recipient. */
  accept(from: string, m: SealedGroupMessage): { seq: number; chain: string; receivedAt: number; deliveries: Record<string, GroupDelivery> } {
    this.seq += 1;
    this.now += 1000;
    this.chain = nextReceiptChain(this.chain, this.seq, fromBase64Url(m.commitment)!, this.now);
    const chain = toBase64Url(this.chain);
    const deliveries: Record<string, GroupDelivery> = {};
    for (const [to, header] of Object.entries(m.headers)) {
      deliveries[to] = { from, header, body: m.body, commitment: m.commitment, seq: this.seq, chain, receivedAt: this.now };
    }
    return { seq: this.seq, chain, receivedAt: this.now, deliveries };
  }
}

class Party {
  constructor(public state: GroupState) {}
  get key(): string {
    return this.state.self.dhPublic;
  }
}

async function newParty(adoptNewSenders = false): Promise<Party> {
  const self = await generateMemberKeys();
  const spk = await rotateSignedPrekey(createPrekeyState(), self, channel, Date.now());
  const otk = await addOneTimePrekeys(spk.state, 10);
  return new Party(createGroupState({ channel, self, prekeys: otk.state, adoptNewSenders }));
}

async function seal(relay: FakeRelay, sender: Party, recipients: Party[], text: string, id = `m${relay.seq + 1}`) {
  const keys = recipients.map((r) => r.key);
  for (const k of recipientsNeedingSession(sender.state, keys)) {
    const peer = recipients.find((r) => r.key === k)!;
    sender.state = await startSession(sender.state, relay.bundle(peer.state), peer.state.self.signPublic);
  }
  const out = await sealGroupMessage(sender.state, { recipients: keys, plaintext: utf8(text), clientMsgId: id, group: NO_GROUP });
  sender.state = out.state;
  return out.message;
}

/** Seals, commits at the relay, records the ack at the sender. */
async function send(relay: FakeRelay, sender: Party, recipients: Party[], text: string) {
  const message = await seal(relay, sender, recipients, text);
  const ack = relay.accept(sender.key, message);
  const rec = recordReceipt(sender.state, ack.seq, ack.chain, { commitment: message.commitment, receivedAt: ack.receivedAt });
  expect(rec.fork).toBe(false);
  sender.state = rec.state;
  return { message, ...ack };
}

async function open(p: Party, d: GroupDelivery): Promise<OpenGroupResult> {
  const r = await openGroupMessage(p.state, d);
  if (r.status === 'delivered') p.state = r.state;
  return r;
}

function expectDelivered(r: OpenGroupResult, text: string) {
  expect(r.status).toBe('delivered');
  if (r.status !== 'delivered') return [];
  expect(fromUtf8(r.message.plaintext)).toBe(text);
  return r.alarms.map((a) => a.code);
}

function rejectedCode(r: OpenGroupResult): ErrorCode | 'accepted' {
  return r.status === 'rejected' ? r.error.code : 'accepted';
}

/** Freezes a value and everything it holds, so a write anywhere into it throws. */
function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

function flipBit(text: string, byte: number, bit = 0): string {
  const bytes = fromBase64Url(text)!.slice();
  bytes[byte]! ^= 1 << bit;
  return toBase64Url(bytes);
}

beforeAll(async () => {
  await sodiumReady();
});

describe('group messages', () => {
  it('8 parties each send and every other party opens every message, without alarms', async () => {
    const relay = new FakeRelay();
    const parties = await Promise.all(Array.from({ length: 8 }, () => newParty()));
    for (let round = 0; round < 2; round++) {
      for (const sender of parties) {
        const others = parties.filter((p) => p !== sender);
        const sent = await send(relay, sender, others, `${round} from ${sender.key}`);
        expect(Object.keys(sent.message.headers).sort()).toEqual(others.map((o) => o.key).sort());
        for (const r of others) {
          const res = await open(r, sent.deliveries[r.key]!);
          expect(expectDelivered(res, `${round} from ${sender.key}`)).toEqual([]);
          if (res.status === 'delivered') {
            expect(res.message.from).toBe(sender.key);
            expect(res.message.counter).toBe(round + 1);
            expect(verifyOpening(fromBase64Url(res.message.commitment)!, fromBase64Url(res.message.frankingKey)!, res.message.plaintext)).toBe(true);
          }
        }
      }
    }
  });

  it('makes every header one size, so the relay cannot tell which pairs have never answered each other', async () => {
    const relay = new FakeRelay();
    const [a, b, c] = [await newParty(), await newParty(), await newParty()];
    const first = await send(relay, a, [b, c], 'x');
    expectDelivered(await open(b, first.deliveries[b.key]!), 'x');
    expectDelivered(await open(c, first.deliveries[c.key]!), 'x');
    // b answers a; c never does, so a's headers to c still carry the X3DH prefix, to b not.
    const reply = await send(relay, b, [a, c], 'reply');
    expectDelivered(await open(a, reply.deliveries[a.key]!), 'reply');
    const later = await seal(relay, a, [b, c], 'y', 'a-much-longer-client-message-id-0123456789-0123456789-0123456789');
    const sizes = [first.message, reply.message, later].flatMap((m) => Object.values(m.headers).map((h) => fromBase64Url(h)!.length));
    expect(new Set(sizes).size).toBe(1);
    expect(sizes[0]!).toBeLessThan(LIMITS.maxHeaderBytes);
    // And nothing in clear tells them apart: not even the flags byte is readable.
    const [toB, toC] = [fromBase64Url(later.headers[b.key]!)!, fromBase64Url(later.headers[c.key]!)!];
    expect(toB[0]).toBe(2);
    expect(() => openEnvelope(toC, { channel, sender: a.key, recipient: c.key }, derivePairKey(b.state.self.dhSecret, b.key, a.key, channel))).toThrow();
    expect(openEnvelope(toC, { channel, sender: a.key, recipient: c.key }, derivePairKey(c.state.self.dhSecret, c.key, a.key, channel)).prefix).not.toBeNull();
    expect(openEnvelope(toB, { channel, sender: a.key, recipient: b.key }, derivePairKey(b.state.self.dhSecret, b.key, a.key, channel)).prefix).toBeNull();
  });

  it('pads bodies to size buckets, hiding the exact length', async () => {
    const relay = new FakeRelay();
    const [a, b] = [await newParty(), await newParty()];
    const short = await seal(relay, a, [b], 'hi');
    const longer = await seal(relay, a, [b], 'x'.repeat(200));
    expect(fromBase64Url(short.body)!.length).toBe(fromBase64Url(longer.body)!.length);
    await expect(sealGroupMessage(a.state, { recipients: [b.key], plaintext: new Uint8Array(40_000), clientMsgId: 'big', group: NO_GROUP })).rejects.toMatchObject({
      code: 'body_too_large',
    });
  });

  it('rejects a body swapped for another message of the same sender', async () => {
    const relay = new FakeRelay();
    const [a, b] = [await newParty(), await newParty()];
    const one = await send(relay, a, [b], 'one');
    const two = await send(relay, a, [b], 'two');
    const d = two.deliveries[b.key]!;
    expect(rejectedCode(await open(b, { ...d, body: one.message.body }))).toBe('integrity_body_hash');
    expect(rejectedCode(await open(b, { ...d, commitment: one.message.commitment }))).toBe('integrity_body_hash');
    expectDelivered(await open(b, one.deliveries[b.key]!), 'one');
    expectDelivered(await open(b, d), 'two');
  });

  it('detects a flipped bit anywhere in header, body or commitment, then still opens the genuine message', async () => {
    const relay = new FakeRelay();
    const [a, b] = [await newParty(), await newParty()];
    // First message carries the X3DH prefix; the third is a plain ratchet message after a reply.
    const first = await send(relay, a, [b], 'first');
    expectDelivered(await open(b, first.deliveries[b.key]!), 'first');
    const reply = await send(relay, b, [a], 'reply');
    expectDelivered(await open(a, reply.deliveries[a.key]!), 'reply');
    const third = await send(relay, a, [b], 'third');
    const headerCodes = new Set<string>([
      'integrity_forged_sender',
      'decrypt_failed',
      'counter_out_of_range',
      'integrity_replay',
    ]);
    for (const sent of [first, third]) {
      const d = sent.deliveries[b.key]!;
      const headerLen = fromBase64Url(d.header)!.length;
      for (let i = 0; i < headerLen; i++) {
        // A fresh sequence, so a re-delivery of an opened message is not taken for a harmless duplicate.
        const code = rejectedCode(await openGroupMessage(b.state, { ...d, seq: 1000 + i, header: flipBit(d.header, i, i % 8) }));
        expect(headerCodes, `header byte ${i}`).toContain(code);
      }
    }
    const d = third.deliveries[b.key]!;
    const bodyLen = fromBase64Url(d.body)!.length;
    for (const i of [0, 23, 24, 100, bodyLen - 17, bodyLen - 1]) {
      expect(rejectedCode(await openGroupMessage(b.state, { ...d, body: flipBit(d.body, i) }))).toBe('integrity_body_hash');
    }
    for (let i = 0; i < 32; i++) {
      expect(rejectedCode(await openGroupMessage(b.state, { ...d, commitment: flipBit(d.commitment, i, i % 8) }))).toBe('integrity_body_hash');
    }
    expect(rejectedCode(await openGroupMessage(b.state, { ...d, body: d.body + 'AA' }))).toBe('integrity_body_hash');
    expectDelivered(await open(b, d), 'third');
  });

  it('rejects a message relabelled as from another member, or addressed to someone else', async () => {
    const relay = new FakeRelay();
    const [a, b, c] = [await newParty(), await newParty(), await newParty()];
    const fromA = await send(relay, a, [b, c], 'hello from a');
    expectDelivered(await open(b, fromA.deliveries[b.key]!), 'hello from a');
    // c, colluding with the relay, sends its own message to b labelled as from a.
    const fromC = await send(relay, c, [b], 'I am a');
    expect(rejectedCode(await openGroupMessage(b.state, { ...fromC.deliveries[b.key]!, from: a.key }))).toBe('integrity_forged_sender');
    // The header a made for c, shown to b: its X3DH prefix names a prekey b does not have.
    expect(['integrity_forged_sender', 'decrypt_failed']).toContain(
      rejectedCode(await openGroupMessage(b.state, { ...fromA.deliveries[c.key]!, seq: 99 })),
    );
    // Once sessions are established (no prefix), a misdirected header fails authentication.
    expectDelivered(await open(c, fromA.deliveries[c.key]!), 'hello from a');
    const replyB = await send(relay, b, [a], 'to a');
    expectDelivered(await open(a, replyB.deliveries[a.key]!), 'to a');
    const replyC = await send(relay, c, [a], 'to a');
    expectDelivered(await open(a, replyC.deliveries[a.key]!), 'to a');
    const again = await send(relay, a, [b, c], 'again');
    expect(rejectedCode(await openGroupMessage(b.state, { ...again.deliveries[c.key]! }))).toBe('integrity_forged_sender');
    expectDelivered(await open(b, again.deliveries[b.key]!), 'again');
  });

  it('rejects a replay at a new sequence, also after the state is persisted and restored', async () => {
    const relay = new FakeRelay();
    const [a, b] = [await newParty(), await newParty()];
    const sent = await send(relay, a, [b], 'once');
    const d = sent.deliveries[b.key]!;
    expectDelivered(await open(b, d), 'once');
    expect((await openGroupMessage(b.state, d)).status).toBe('duplicate');
    const replay = { ...d, seq: 5, chain: toBase64Url(new Uint8Array(32).fill(9)) };
    expect(rejectedCode(await openGroupMessage(b.state, replay))).toBe('integrity_replay');

    const store = new MemoryKeyStore();
    await store.put('state', b.state);
    const restored = (await store.get('state')) as GroupState;
    expect(rejectedCode(await openGroupMessage(restored, replay))).toBe('integrity_replay');
  });

  it('delivers after a dropped message with a gap alarm, then flags the late one as reordered', async () => {
    const relay = new FakeRelay();
    const [a, b] = [await newParty(), await newParty()];
    const m1 = await send(relay, a, [b], 'm1');
    const m2 = await send(relay, a, [b], 'm2');
    const m3 = await send(relay, a, [b], 'm3');
    expect(expectDelivered(await open(b, m1.deliveries[b.key]!), 'm1')).toEqual([]);
    const gap = await open(b, m3.deliveries[b.key]!);
    expect(expectDelivered(gap, 'm3')).toEqual(['integrity_gap']);
    if (gap.status === 'delivered') expect(gap.alarms[0]!.missing).toEqual([2]);
    expect(expectDelivered(await open(b, m2.deliveries[b.key]!), 'm2')).toEqual(['integrity_reorder']);
    // Now complete: it cannot be delivered again.
    expect(rejectedCode(await openGroupMessage(b.state, { ...m2.deliveries[b.key]!, seq: 50 }))).toBe('integrity_replay');
  });

  it('raises a gap when the very first message of a founding member is dropped', async () => {
    const relay = new FakeRelay();
    const [a, b] = [await newParty(), await newParty()];
    await send(relay, a, [b], 'lost');
    const m2 = await send(relay, a, [b], 'second');
    expect(expectDelivered(await open(b, m2.deliveries[b.key]!), 'second')).toEqual(['integrity_gap']);
  });

  it('lets a late joiner adopt an existing sender counter without a gap alarm', async () => {
    const relay = new FakeRelay();
    const [a, b] = [await newParty(), await newParty()];
    const late = await newParty(true);
    await send(relay, a, [b], 'before');
    const sent = await send(relay, a, [b, late], 'welcome');
    expect(expectDelivered(await open(late, sent.deliveries[late.key]!), 'welcome')).toEqual([]);
  });

  it('detects a fork: the sender quotes a receipt chain the recipient saw differently', async () => {
    const relay = new FakeRelay();
    const [a, b, c] = [await newParty(), await newParty(), await newParty()];
    const fromC = await send(relay, c, [a, b], 'c speaks');
    expectDelivered(await open(a, fromC.deliveries[a.key]!), 'c speaks');
    // The relay shows b another history at the same sequence (no receivedAt: no link check).
    const forked = { ...fromC.deliveries[b.key]!, chain: toBase64Url(new Uint8Array(32).fill(1)) };
    delete forked.receivedAt;
    expectDelivered(await open(b, forked), 'c speaks');
    const fromA = await send(relay, a, [b, c], 'a speaks');
    const alarms = expectDelivered(await open(b, fromA.deliveries[b.key]!), 'a speaks');
    expect(alarms).toContain('integrity_fork');
  });

  it('detects a receipt chain value that does not extend the previous one', async () => {
    const relay = new FakeRelay();
    const [a, b] = [await newParty(), await newParty()];
    const m1 = await send(relay, a, [b], 'm1');
    const m2 = await send(relay, a, [b], 'm2');
    expectDelivered(await open(b, m1.deliveries[b.key]!), 'm1');
    const wrong = { ...m2.deliveries[b.key]!, receivedAt: m2.receivedAt + 1 };
    expect(expectDelivered(await open(b, wrong), 'm2')).toEqual(['integrity_fork']);
  });

  it('rejects a header whose ratchet counter is 2^32-1 before any key derivation', async () => {
    const relay = new FakeRelay();
    const [a, b] = [await newParty(), await newParty()];
    const first = await send(relay, a, [b], 'first');
    expectDelivered(await open(b, first.deliveries[b.key]!), 'first');
    const reply = await send(relay, b, [a], 'reply');
    expectDelivered(await open(a, reply.deliveries[a.key]!), 'reply');
    const plain = await send(relay, a, [b], 'plain');
    const d = plain.deliveries[b.key]!;
    // Only a member holding the pair key can write a header (a malicious peer, not the relay):
    // it rewrites the counters inside and seals the header again.
    const ids = { channel, sender: a.key, recipient: b.key };
    const pairKey = derivePairKey(b.state.self.dhSecret, b.key, a.key, channel);
    const opened = openEnvelope(fromBase64Url(d.header)!, ids, pairKey);
    expect(opened.prefix).toBeNull();
    const withCounters = (pn: number, n: number) =>
      toBase64Url(sealEnvelope(pairKey, ids, opened.clear, encodeRatchetHeader({ ...opened.header, pn, n }), opened.ciphertext));
    const started = performance.now();
    expect(rejectedCode(await openGroupMessage(b.state, { ...d, header: withCounters(opened.header.pn, 0xffff_ffff) }))).toBe('counter_out_of_range');
    expect(rejectedCode(await openGroupMessage(b.state, { ...d, header: withCounters(0xffff_ffff, opened.header.n) }))).toBe('counter_out_of_range');
    expect(performance.now() - started).toBeLessThan(5000);
    expectDelivered(await open(b, d), 'plain');
  });

  it('deniability: a recipient forges, from its own state, a message its client accepts as from the sender', async () => {
    const relay = new FakeRelay();
    const [a, b, c] = [await newParty(), await newParty(), await newParty()];
    const real = await send(relay, a, [b, c], 'real words of a');
    expectDelivered(await open(b, real.deliveries[b.key]!), 'real words of a');
    expectDelivered(await open(c, real.deliveries[c.key]!), 'real words of a');
    const forged = await forgeGroupMessage(b.state, { sender: a.key, plaintext: utf8('words b put in a’s mouth'), clientMsgId: 'forged', group: NO_GROUP });
    const committed = relay.accept(a.key, forged);
    const res = await open(b, committed.deliveries[b.key]!);
    expect(expectDelivered(res, 'words b put in a’s mouth')).toEqual([]);
    if (res.status === 'delivered') expect(res.message.from).toBe(a.key);
    // The forgery convinces only b: c's client rejects b's header shown to it.
    const toC = { ...committed.deliveries[b.key]!, seq: committed.seq + 1 };
    expect(rejectedCode(await openGroupMessage(c.state, toC))).toBe('integrity_forged_sender');
  });

  it('forward secrecy: state captured after reading a message cannot decrypt it', async () => {
    const relay = new FakeRelay();
    const [a, b] = [await newParty(), await newParty()];
    const sent = await send(relay, a, [b], 'burn after reading');
    const d = sent.deliveries[b.key]!;
    expectDelivered(await open(b, d), 'burn after reading');
    const captured = JSON.parse(JSON.stringify(b.state)) as GroupState;
    // Even an attacker who strips the replay bookkeeping from the captured state cannot open it.
    const stripped: GroupState = { ...captured, incoming: {}, delivered: [], receipts: [] };
    const r = await openGroupMessage(stripped, { ...d, seq: 77 });
    expect(r.status).toBe('rejected');
  });

  it('continues a conversation after every state is serialised and restored mid-way', async () => {
    const relay = new FakeRelay();
    const parties = [await newParty(), await newParty(), await newParty()];
    const [a, b, c] = parties as [Party, Party, Party];
    const m1 = await send(relay, a, [b, c], 'm1');
    expectDelivered(await open(b, m1.deliveries[b.key]!), 'm1');
    const m2 = await send(relay, b, [a, c], 'm2');
    for (const p of parties) p.state = JSON.parse(JSON.stringify(p.state)) as GroupState;
    expectDelivered(await open(c, m1.deliveries[c.key]!), 'm1');
    expectDelivered(await open(a, m2.deliveries[a.key]!), 'm2');
    expectDelivered(await open(c, m2.deliveries[c.key]!), 'm2');
    const m3 = await send(relay, c, [a, b], 'm3');
    expect(expectDelivered(await open(a, m3.deliveries[a.key]!), 'm3')).toEqual([]);
    expect(expectDelivered(await open(b, m3.deliveries[b.key]!), 'm3')).toEqual([]);
  });

  it('handles both members initiating at the same time', async () => {
    const relay = new FakeRelay();
    const [a, b] = [await newParty(), await newParty()];
    const fromA = await send(relay, a, [b], 'a first');
    const fromB = await send(relay, b, [a], 'b first');
    expectDelivered(await open(b, fromA.deliveries[b.key]!), 'a first');
    expectDelivered(await open(a, fromB.deliveries[a.key]!), 'b first');
    for (let i = 0; i < 3; i++) {
      const x = await send(relay, a, [b], `a${i}`);
      const y = await send(relay, b, [a], `b${i}`);
      expect(expectDelivered(await open(b, x.deliveries[b.key]!), `a${i}`)).toEqual([]);
      expect(expectDelivered(await open(a, y.deliveries[a.key]!), `b${i}`)).toEqual([]);
    }
  });

  it('a sender restored from a backup seals its next header under a fresh nonce, and the peer refuses the repeat as a replay', async () => {
    const relay = new FakeRelay();
    const [alice, bob] = [await newParty(), await newParty()];
    expectDelivered(await open(bob, (await send(relay, alice, [bob], 'first')).deliveries[bob.key]!), 'first');
    const backup = JSON.parse(JSON.stringify(alice.state)) as GroupState;
    const before = (await send(relay, alice, [bob], 'sent before the restore')).deliveries[bob.key]!;
    alice.state = backup;
    const after = (await send(relay, alice, [bob], 'sent after the restore')).deliveries[bob.key]!;
    // Same chain position, same message key: the (hidden) ratchet headers are equal...
    const ids = { channel, sender: alice.key, recipient: bob.key };
    const pairKey = derivePairKey(bob.state.self.dhSecret, bob.key, alice.key, channel);
    const [e1, e2] = [before, after].map((d) => openEnvelope(fromBase64Url(d.header)!, ids, pairKey)) as [OpenedEnvelope, OpenedEnvelope];
    expect(e2.header).toEqual(e1.header);
    // ...but the nonce under that key is fresh.
    const nonce = (e: OpenedEnvelope) => toBase64Url(e.ciphertext.subarray(0, RATCHET_NONCE_BYTES));
    expect(nonce(e2)).not.toBe(nonce(e1));
    expectDelivered(await open(bob, before), 'sent before the restore');
    expect(rejectedCode(await open(bob, after))).toBe('integrity_replay');
  });

  it('draws fresh secrets for every message: the same plaintext never seals the same way twice', async () => {
    const relay = new FakeRelay();
    const [a, b] = [await newParty(), await newParty()];
    const sealed: SealedGroupMessage[] = [];
    const frankingKeys: string[] = [];
    await seal(relay, a, [b], 'opens the session');
    for (let i = 0; i < 3; i++) {
      const out = await sealGroupMessage(a.state, { recipients: [b.key], plaintext: utf8('same text'), clientMsgId: 'same-id', group: NO_GROUP });
      a.state = out.state;
      sealed.push(out.message);
      frankingKeys.push(out.frankingKey);
    }
    const nonces = sealed.map((m) => toBase64Url(fromBase64Url(m.body)!.subarray(0, 24)));
    for (const values of [nonces, frankingKeys, sealed.map((m) => m.body), sealed.map((m) => m.commitment)]) {
      expect(new Set(values).size).toBe(values.length);
    }
    for (const k of frankingKeys) expect(fromBase64Url(k)!.some((x) => x !== 0)).toBe(true);
  });

  it('remembers the newest receipts only, whatever order they are recorded in', async () => {
    let state = (await newParty()).state;
    const chain = (seq: number) => toBase64Url(new Uint8Array(32).fill(seq % 251));
    const seqs = Array.from({ length: MAX_REMEMBERED_RECEIPTS + 3 }, (_, i) => i + 1);
    // An old sequence recorded last must be the one dropped, not the newest.
    for (const seq of [...seqs.slice(1), seqs[0]!]) state = recordReceipt(state, seq, chain(seq)).state;
    const kept = seqs.filter((seq) => recordReceipt(state, seq, chain(seq + 1)).fork);
    expect(kept).toEqual(seqs.slice(3));
    expect(state.lastReceipt).toEqual({ seq: seqs.at(-1), chain: chain(seqs.at(-1)!) });
  });

  it('never modifies the state it opens with, also with full receipt windows at realistic sequences', async () => {
    const relay = new FakeRelay();
    relay.seq = 1_000_000;
    const [a, b] = [await newParty(), await newParty()];
    // Receipts acknowledged or quoted before: a full window just below the next sequence.
    const start = relay.seq - MAX_REMEMBERED_RECEIPTS;
    for (let seq = start; seq < relay.seq; seq++) {
      b.state = recordReceipt(b.state, seq, toBase64Url(new Uint8Array(32).fill(seq % 251))).state;
    }
    for (let i = 0; i < 3; i++) expectDelivered(await open(b, (await send(relay, a, [b], `m${i}`)).deliveries[b.key]!), `m${i}`);
    const d = (await send(relay, a, [b], 'next')).deliveries[b.key]!;
    const frozen = deepFreeze(b.state);
    const snapshot = JSON.stringify(frozen);
    // Any write into the given state (or a part a new state shares with it) would throw here.
    expect(rejectedCode(await openGroupMessage(frozen, { ...d, body: flipBit(d.body, 30) }))).toBe('integrity_body_hash');
    const first = await openGroupMessage(frozen, d);
    expect(expectDelivered(first, 'next')).toEqual([]);
    expectDelivered(await openGroupMessage(frozen, d), 'next');
    expect(JSON.stringify(frozen)).toBe(snapshot);
    if (first.status !== 'delivered') return;
    expect((await openGroupMessage(first.state, d)).status).toBe('duplicate');
    // Four sequences were added to the full window, so exactly the four oldest are forgotten.
    const other = (seq: number) => toBase64Url(new Uint8Array(32).fill((seq + 1) % 251));
    expect(recordReceipt(first.state, start + 3, other(start + 3)).fork).toBe(false);
    expect(recordReceipt(first.state, start + 4, other(start + 4)).fork).toBe(true);
  });

  it('refuses to encrypt to itself or to a member without a session', async () => {
    const [a, b] = [await newParty(), await newParty()];
    await expect(sealGroupMessage(a.state, { recipients: [a.key], plaintext: utf8('x'), clientMsgId: 'x', group: NO_GROUP })).rejects.toThrow(RangeError);
    await expect(sealGroupMessage(a.state, { recipients: [b.key], plaintext: utf8('x'), clientMsgId: 'x', group: NO_GROUP })).rejects.toThrow(RangeError);
  });
});
