import { randomBytes } from 'node:crypto';
import {
  addOneTimePrekeys,
  createGroupState,
  createPrekeyState,
  currentSignedPrekey,
  generateMemberKeys,
  MAX_REMEMBERED_RECEIPTS,
  openGroupMessage,
  recipientsNeedingSession,
  rotateSignedPrekey,
  sealGroupMessage,
  sodium,
  sodiumReady,
  startSession,
  type GroupDelivery,
  type GroupState,
  type SealedGroupMessage,
} from '@backchannel/client-sdk';
import { toBase64Url } from '@backchannel/client-sdk/protocol';

/** Sealing outside a channel: the group state a header names is irrelevant to the timing. */
const NO_GROUP = { epoch: 0, stateHash: toBase64Url(new Uint8Array(32)) };
import { progress } from './progress.js';

/**
 * Mode 2: the SDK's crypto layer in Node, no network. A sender seals 1 KiB messages to 1 and to
 * 7 recipients (body encrypted once, one Double-Ratchet header per recipient), then every
 * recipient opens all of them in order. Also the libsodium primitives, for comparison with the
 * published figures.
 */

/** One fan-out width. */
export interface SdkRow {
  readonly recipients: number;
  /** Messages sealed per second by one sender (encrypted and fanned out to every recipient). */
  readonly sealPerSec: number;
  /** Deliveries opened per second (one recipient opening one message). */
  readonly openPerSec: number;
  /** Messages per second through seal and every recipient's open, on one core. */
  readonly endToEndPerSec: number;
  /** Messages sealed in the timed window (the first 3,000 are opened by every recipient). */
  readonly messages: number;
}

/** Opens by one recipient at relay sequences past 10⁶, its receipt windows already full. */
export interface SdkHighSeqRow {
  /** Relay sequence of the first timed delivery. */
  readonly fromSeq: number;
  /** Sequences each window holds (all full before timing starts). */
  readonly window: number;
  readonly openPerSec: number;
  readonly messages: number;
}

/** Mode 2's output. */
export interface SdkReport {
  readonly rows: SdkRow[];
  /** Opens at realistic sequence numbers: the cost of the remembered-receipt windows shows here. */
  readonly highSeq: SdkHighSeqRow;
  /** Operations per second of libsodium-wrappers primitives on this machine. */
  readonly primitives: Record<string, number>;
}

async function party(channel: string): Promise<GroupState> {
  const self = await generateMemberKeys();
  const spk = await rotateSignedPrekey(createPrekeyState(), self, channel, Date.now());
  const otk = await addOneTimePrekeys(spk.state, 4);
  return createGroupState({ channel, self, prekeys: otk.state });
}

function rate(fn: () => void, ms: number): number {
  let n = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < ms) {
    for (let i = 0; i < 50; i++) fn();
    n += 50;
    t = performance.now();
  }
  return Math.round((n / (t - t0)) * 1000);
}

function primitives(ms: number): Record<string, number> {
  const a = sodium.crypto_box_keypair();
  const b = sodium.crypto_box_keypair();
  const s = sodium.crypto_sign_keypair();
  const msg = randomBytes(64);
  const sig = sodium.crypto_sign_detached(msg, s.privateKey);
  const key = sodium.crypto_aead_xchacha20poly1305_ietf_keygen();
  const nonce = randomBytes(24);
  const kib = randomBytes(1024);
  return {
    x25519: rate(() => sodium.crypto_scalarmult(a.privateKey, b.publicKey), ms),
    ed25519Sign: rate(() => sodium.crypto_sign_detached(msg, s.privateKey), ms),
    ed25519Verify: rate(() => sodium.crypto_sign_verify_detached(sig, msg, s.publicKey), ms),
    xchacha20poly1305_1KiB: rate(() => sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(kib, null, null, nonce, key), ms),
    blake2b_1KiB: rate(() => sodium.crypto_generichash(32, kib, null), ms),
  };
}

/** A sender and `recipients` members, the sender holding a session with each. */
async function group(recipients: number): Promise<{ sender: GroupState; others: GroupState[]; keys: string[] }> {
  const channel = toBase64Url(randomBytes(16));
  let sender = await party(channel);
  const others = await Promise.all(Array.from({ length: recipients }, () => party(channel)));
  const keys = others.map((o) => o.self.dhPublic);
  for (const k of recipientsNeedingSession(sender, keys)) {
    const peer = others.find((o) => o.self.dhPublic === k)!;
    const otk = Object.values(peer.prekeys.oneTime)[0];
    sender = await startSession(
      sender,
      { member: k, signKey: peer.self.signPublic, signedPrekey: currentSignedPrekey(peer.prekeys)!, oneTimePrekey: otk ? { id: otk.id, key: otk.publicKey } : null },
      peer.self.signPublic,
    );
  }
  return { sender, others, keys };
}

/** Sealed messages each recipient opens (in order, from the first). */
const KEEP_FOR_OPENING = 3_000;

async function fanOut(recipients: number, ms: number): Promise<SdkRow> {
  const { others, keys, ...g } = await group(recipients);
  let sender = g.sender;
  const plaintext = randomBytes(1024 - 64); // padded to 1 KiB of ciphertext body, about
  // A sender hands each sealed message to the relay and forgets it: only the first ones are kept,
  // for the recipients to open, so the heap does not grow with the run.
  const sealed: SealedGroupMessage[] = [];
  let count = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < ms) {
    const out = await sealGroupMessage(sender, { recipients: keys, plaintext, clientMsgId: `m${count++}`, group: NO_GROUP });
    sender = out.state;
    if (sealed.length < KEEP_FOR_OPENING) sealed.push(out.message);
  }
  const sealSeconds = (performance.now() - t0) / 1000;
  const t1 = performance.now();
  let opened = 0;
  for (let r = 0; r < others.length; r++) {
    let state = others[r]!;
    for (let i = 0; i < sealed.length; i++) {
      const m = sealed[i]!;
      const res = await openGroupMessage(state, { from: sender.self.dhPublic, header: m.headers[state.self.dhPublic]!, body: m.body, commitment: m.commitment, seq: i + 1, chain: toBase64Url(randomBytes(32)) });
      if (res.status !== 'delivered') throw new Error(`open failed: ${res.status === 'rejected' ? res.error.code : res.status}`);
      state = res.state;
      opened++;
    }
  }
  const openSeconds = (performance.now() - t1) / 1000;
  const sealPerSec = Math.round(count / sealSeconds);
  const openPerSec = Math.round(opened / openSeconds);
  return {
    recipients,
    sealPerSec,
    openPerSec,
    endToEndPerSec: Math.round(1 / (1 / sealPerSec + recipients / openPerSec)),
    messages: count,
  };
}

/**
 * One recipient opens messages delivered at sequences from 10⁶ on. The sequences are given, not
 * sent (the relay numbers a channel's messages): before timing, the recipient opens a full
 * window's worth just below 10⁶, which leaves its receipt and delivered windows as they are after
 * a million messages, since only the newest 4,096 are remembered. Every timed open then records
 * into full windows and prunes the oldest entry.
 */
async function highSeqOpens(ms: number): Promise<SdkHighSeqRow> {
  const fromSeq = 1_000_000;
  const { others, keys, ...g } = await group(1);
  let sender = g.sender;
  let state = others[0]!;
  const plaintext = randomBytes(1024 - 64);
  const deliver = async (seq: number): Promise<GroupDelivery> => {
    const out = await sealGroupMessage(sender, { recipients: keys, plaintext, clientMsgId: `m${seq}`, group: NO_GROUP });
    sender = out.state;
    const m = out.message;
    return { from: sender.self.dhPublic, header: m.headers[keys[0]!]!, body: m.body, commitment: m.commitment, seq, chain: toBase64Url(randomBytes(32)) };
  };
  const open = async (d: GroupDelivery) => {
    const res = await openGroupMessage(state, d);
    if (res.status !== 'delivered') throw new Error(`open failed: ${res.status === 'rejected' ? res.error.code : res.status}`);
    state = res.state;
  };
  for (let seq = fromSeq - MAX_REMEMBERED_RECEIPTS; seq < fromSeq; seq++) await open(await deliver(seq));
  // Seal first, so only opens are timed (for at most `ms`).
  const pending: GroupDelivery[] = [];
  const t0 = performance.now();
  while (performance.now() - t0 < ms / 2) pending.push(await deliver(fromSeq + pending.length));
  const t1 = performance.now();
  let opened = 0;
  for (const d of pending) {
    await open(d);
    opened++;
    if (performance.now() - t1 > ms) break;
  }
  const openPerSec = Math.round(opened / ((performance.now() - t1) / 1000));
  return { fromSeq, window: MAX_REMEMBERED_RECEIPTS, openPerSec, messages: opened };
}

/** Runs mode 2 for `ms` per measurement. */
export async function runSdkBench(ms: number): Promise<SdkReport> {
  await sodiumReady();
  progress('SDK: libsodium primitives');
  const prims = primitives(Math.max(100, ms / 4));
  const rows: SdkRow[] = [];
  for (const n of [1, 7]) {
    progress(`SDK: seal 1 KiB to ${n} recipient(s), then open at each`);
    rows.push(await fanOut(n, ms));
  }
  progress(`SDK: open 1 KiB at sequences past 10⁶, receipt windows full (${MAX_REMEMBERED_RECEIPTS})`);
  const highSeq = await highSeqOpens(ms);
  progress(`SDK: ${highSeq.openPerSec} opens/s from seq ${highSeq.fromSeq} (${highSeq.messages} messages)`);
  return { rows, highSeq, primitives: prims };
}
