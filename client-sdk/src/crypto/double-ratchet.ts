/**
 * The Double Ratchet (Signal spec, Perrin & Marlinspike 2016) for one pairwise session: a DH
 * ratchet on X25519, symmetric chains via `crypto_kdf` (keyed BLAKE2b), and per-message keys
 * feeding XChaCha20-Poly1305 with random nonces. State is plain JSON (base64url strings and numbers).
 *
 * Functions never modify the state they are given: each returns a new state, so a caller can
 * persist the new state before handing a plaintext to the application, and a message that
 * fails to authenticate leaves nothing behind. A new state may share parts it did not change
 * (the skipped keys, say) with the old one; since nothing is ever modified in place, that is safe.
 *
 * Bounds: a header's counter `n` or previous-chain length `pn` of 2^32-1 or more, or a message
 * that would need more than {@link MAX_SKIP} skipped keys, is refused with
 * `counter_out_of_range` before any key is derived, so a huge counter costs nothing. Stored
 * skipped keys are capped at {@link MAX_SKIP} per session (oldest evicted first) and expire
 * after {@link SKIPPED_KEY_LIFETIME} later messages, or {@link SKIPPED_KEY_MAX_AGE_MS} after
 * they were stored when the caller sweeps with {@link expireSkippedKeys} (the caller's clock is
 * an input, so the ratchet stays a pure function of its inputs).
 */
import { BackchannelError } from '../protocol/index.js';
import { sodium } from '../sodium.js';
import { ByteReader, b64, bytesOf, concat, putU32be } from './bytes.js';
import { KDF_CTX_CHAIN, KDF_CTX_HEADER, KDF_INFO_ROOT, hkdf, subkey } from './kdf.js';
import { randomBytes } from './random.js';
import { direct } from './sodium-direct.js';

/** Most skipped message keys a session keeps, and most one message may make it skip. */
export const MAX_SKIP = 1000;
/**
 * A skipped message key is deleted once this many later messages of the session have been
 * read: a message held back longer (by the relay, or lost) can no longer be read, and a device
 * seized later holds no key for it. Counted in messages inside the decrypt; expiry by age is a
 * separate sweep ({@link expireSkippedKeys}) that takes the time as an argument, so the ratchet
 * stays a pure function of its inputs.
 */
export const SKIPPED_KEY_LIFETIME = 500;
/**
 * A skipped message key is also deleted this long after it was stored, however quiet the
 * session: counting later messages alone keeps a withheld message's key forever in a session
 * that goes silent. Time comes from the member's own clock, which the relay does not hold.
 */
export const SKIPPED_KEY_MAX_AGE_MS = 7 * 86_400_000;
/** Counters at or above this value are refused (the u32 maximum is reserved). */
export const MAX_COUNTER = 0xffff_ffff;
/** Past peer ratchet keys remembered so a replay of an old chain is named as such. */
const MAX_PREVIOUS_RATCHET_KEYS = 8;
/** Encoded length of a {@link RatchetHeader}. */
export const RATCHET_HEADER_BYTES = 40;

/** The clear header of a ratchet message. */
export interface RatchetHeader {
  /** Sender's current ratchet public key (base64url). */
  dh: string;
  /** Length of the sender's previous sending chain. */
  pn: number;
  /** Message number in the current sending chain. */
  n: number;
}

/** One session's ratchet state, JSON-serialisable. Secret. */
export interface RatchetState {
  rootKey: string;
  ours: { publicKey: string; secretKey: string };
  theirs: string | null;
  sendChain: string | null;
  recvChain: string | null;
  ns: number;
  nr: number;
  pn: number;
  /** Skipped message keys by `"<ratchet key>.<n>"`, oldest first. */
  skipped: Record<string, string>;
  /** For each skipped key, {@link RatchetState.received} when it was stored (absent: 0). */
  skippedAt?: Record<string, number>;
  /** Messages read in this session (absent: 0), the clock skipped keys expire by. */
  received?: number;
  /** For each skipped key, when {@link expireSkippedKeys} first saw it (ms since the epoch). */
  skippedTime?: Record<string, number>;
  /** Peer ratchet keys replaced by newer ones, newest first. */
  previousTheirs: string[];
}

/** Encodes a header as dh (32) ‖ pn (u32 BE) ‖ n (u32 BE). */
export function encodeRatchetHeader(h: RatchetHeader): Uint8Array {
  const out = new Uint8Array(RATCHET_HEADER_BYTES);
  out.set(bytesOf(h.dh, 32, 'ratchet key'));
  putU32be(out, 32, h.pn);
  putU32be(out, 36, h.n);
  return out;
}

/** @internal Reads a header from `reader`; malformed input fails with `decrypt_failed`. */
export function readRatchetHeader(reader: ByteReader): RatchetHeader {
  const dh = b64(reader.take(32));
  return { dh, pn: reader.u32(), n: reader.u32() };
}

function kdfRoot(rootKey: Uint8Array, dhOut: Uint8Array): [Uint8Array, Uint8Array] {
  const out = hkdf(dhOut, rootKey, KDF_INFO_ROOT, 64);
  dhOut.fill(0);
  return [out.slice(0, 32), out.slice(32, 64)];
}

function kdfChain(chainKey: Uint8Array): [Uint8Array, Uint8Array] {
  return [subkey(chainKey, KDF_CTX_CHAIN, 1, 32), subkey(chainKey, KDF_CTX_CHAIN, 2, 32)];
}

/** Length of the random nonce that starts every ratchet ciphertext. */
export const RATCHET_NONCE_BYTES = 24;

/**
 * AEAD under the header key of `mk` (subkey 1 in `bc_hdrky`, see kdf.ts) with a fresh random
 * 24-byte nonce, returned as nonce ‖ ciphertext. The nonce is random, not derived from `mk`:
 * a client restored from a backup derives the same `mk` again for its next message, and a
 * derived nonce would then encrypt a different plaintext under the same key and nonce —
 * the same keystream — while a random one (XChaCha20's 192 bits) never repeats.
 */
function seal(mk: Uint8Array, plaintext: Uint8Array, ad: Uint8Array): Uint8Array {
  const nonce = randomBytes(RATCHET_NONCE_BYTES);
  const ct = direct().aeadEncryptUnderSubkey(plaintext, ad, nonce, mk, KDF_CTX_HEADER);
  mk.fill(0);
  return concat(nonce, ct);
}

/**
 * Where the nonce of a message comes from: `carried` (its first 24 bytes, as {@link seal} makes
 * it), or `derived` from the message key (subkey 2 in `bc_hdrky`) as envelope version 1 did —
 * accepted on receipt only, so messages sealed before the change still open; never sent.
 */
export type RatchetNonce = 'carried' | 'derived';

function open(mk: Uint8Array, ciphertext: Uint8Array, ad: Uint8Array, nonceFrom: RatchetNonce): Uint8Array {
  try {
    if (nonceFrom === 'derived') {
      return direct().aeadDecryptUnderSubkey(ciphertext, ad, direct().deriveSubkey(RATCHET_NONCE_BYTES, 2, KDF_CTX_HEADER, mk), mk, KDF_CTX_HEADER);
    }
    const nonce = ciphertext.subarray(0, RATCHET_NONCE_BYTES);
    return direct().aeadDecryptUnderSubkey(ciphertext.subarray(RATCHET_NONCE_BYTES), ad, nonce, mk, KDF_CTX_HEADER);
  } catch (cause) {
    throw new BackchannelError('integrity_forged_sender', 'message does not authenticate in this session', { cause });
  } finally {
    mk.fill(0);
  }
}

function clone(state: RatchetState): RatchetState {
  return {
    ...state,
    ours: { ...state.ours },
    skipped: { ...state.skipped },
    skippedAt: { ...state.skippedAt },
    skippedTime: { ...state.skippedTime },
    previousTheirs: [...state.previousTheirs],
  };
}

/** Counts one more message read, and deletes the skipped keys that have outlived their lifetime. */
function countReceived(state: RatchetState): void {
  const received = (state.received ?? 0) + 1;
  state.received = received;
  const at = state.skippedAt ?? {};
  for (const id of Object.keys(state.skipped)) {
    if (received - (at[id] ?? 0) > SKIPPED_KEY_LIFETIME) forget(state, id);
  }
}

function forget(state: RatchetState, id: string): void {
  delete state.skipped[id];
  if (state.skippedAt) delete state.skippedAt[id];
  if (state.skippedTime) delete state.skippedTime[id];
}

/**
 * Expires skipped keys by age as of `now`: a key not seen before is stamped `now`, and one
 * stamped `maxAgeMs` or more before `now` is deleted. Sweep right after every decrypt (so a key
 * is stamped when it is stored) and on a timer. Returns `state` itself when nothing changed.
 */
export function expireSkippedKeys(state: RatchetState, now: number, maxAgeMs = SKIPPED_KEY_MAX_AGE_MS): RatchetState {
  const stamps = state.skippedTime ?? {};
  const ids = Object.keys(state.skipped);
  if (ids.every((id) => stamps[id] !== undefined && now - stamps[id] < maxAgeMs)) return state;
  const next = clone(state);
  for (const id of ids) {
    const stamp = stamps[id];
    if (stamp === undefined) next.skippedTime![id] = now;
    else if (now - stamp >= maxAgeMs) forget(next, id);
  }
  return next;
}

/** When the oldest skipped key expires by age (undefined when none is stamped). */
export function nextSkippedKeyExpiry(state: RatchetState, maxAgeMs = SKIPPED_KEY_MAX_AGE_MS): number | undefined {
  const stamps = Object.values(state.skippedTime ?? {});
  return stamps.length === 0 ? undefined : Math.min(...stamps) + maxAgeMs;
}

/** Starts the initiator's ratchet from the X3DH secret and the responder's signed prekey. */
export function initRatchetInitiator(sharedSecret: Uint8Array, theirRatchetKey: string): RatchetState {
  const pair = sodium.crypto_box_keypair();
  const [rk, ck] = kdfRoot(sharedSecret, sodium.crypto_scalarmult(pair.privateKey, bytesOf(theirRatchetKey, 32)));
  return {
    rootKey: b64(rk),
    ours: { publicKey: b64(pair.publicKey), secretKey: b64(pair.privateKey) },
    theirs: theirRatchetKey,
    sendChain: b64(ck),
    recvChain: null,
    ns: 0,
    nr: 0,
    pn: 0,
    skipped: {},
    previousTheirs: [],
  };
}

/** Starts the responder's ratchet: its signed prekey pair is its first ratchet key pair. */
export function initRatchetResponder(
  sharedSecret: Uint8Array,
  ourRatchetKey: { publicKey: string; secretKey: string },
): RatchetState {
  return {
    rootKey: b64(sharedSecret),
    ours: { publicKey: ourRatchetKey.publicKey, secretKey: ourRatchetKey.secretKey },
    theirs: null,
    sendChain: null,
    recvChain: null,
    ns: 0,
    nr: 0,
    pn: 0,
    skipped: {},
    previousTheirs: [],
  };
}

/** True when the session can send (the responder cannot until it has received once). */
export function canSend(state: RatchetState): boolean {
  return state.sendChain !== null;
}

/**
 * Encrypts one message. `associatedData` is authenticated along with the encoded header
 * (AD ‖ header), so it must name the message kind, version, channel and both members.
 * `headerBytes` is that encoded header, to put on the wire without encoding it again.
 */
export function ratchetEncrypt(
  state: RatchetState,
  plaintext: Uint8Array,
  associatedData: Uint8Array,
): { state: RatchetState; header: RatchetHeader; headerBytes: Uint8Array; ciphertext: Uint8Array } {
  if (state.sendChain === null) throw new RangeError('session cannot send before it has received');
  if (state.ns >= MAX_COUNTER - 1) throw new BackchannelError('counter_out_of_range', 'sending chain exhausted');
  const [ck, mk] = kdfChain(bytesOf(state.sendChain, 32));
  const header: RatchetHeader = { dh: state.ours.publicKey, pn: state.pn, n: state.ns };
  // A symmetric step changes the chain key and counter only: the rest is shared, not copied.
  const next: RatchetState = { ...state, sendChain: b64(ck), ns: state.ns + 1 };
  ck.fill(0);
  const headerBytes = encodeRatchetHeader(header);
  const ciphertext = seal(mk, plaintext, concat(associatedData, headerBytes));
  return { state: next, header, headerBytes, ciphertext };
}

function skippedId(dh: string, n: number): string {
  return `${dh}.${n}`;
}

/** Refuses absurd counters and over-long skips before anything is derived. */
function checkBounds(state: RatchetState, h: RatchetHeader): void {
  if (h.n >= MAX_COUNTER || h.pn >= MAX_COUNTER) {
    throw new BackchannelError('counter_out_of_range', 'message counter out of range');
  }
  if (skippedId(h.dh, h.n) in state.skipped) return;
  if (h.dh === state.theirs) {
    if (h.n < state.nr) throw new BackchannelError('integrity_replay', 'message key already used (or expired)');
    if (h.n - state.nr > MAX_SKIP) throw new BackchannelError('counter_out_of_range', 'too many skipped messages');
    return;
  }
  if (state.previousTheirs.includes(h.dh)) {
    throw new BackchannelError('integrity_replay', 'message of a finished chain already used or dropped');
  }
  const oldChainSkips = state.recvChain === null ? 0 : Math.max(0, h.pn - state.nr);
  if (oldChainSkips > MAX_SKIP || h.n > MAX_SKIP) {
    throw new BackchannelError('counter_out_of_range', 'too many skipped messages');
  }
}

function skipUntil(state: RatchetState, until: number): void {
  if (state.recvChain === null || state.theirs === null) return;
  let ck = bytesOf(state.recvChain, 32);
  while (state.nr < until) {
    const [nextCk, mk] = kdfChain(ck);
    const id = skippedId(state.theirs, state.nr);
    state.skipped[id] = b64(mk);
    (state.skippedAt ??= {})[id] = state.received ?? 0;
    ck = nextCk;
    state.nr += 1;
  }
  state.recvChain = b64(ck);
  const ids = Object.keys(state.skipped);
  for (let i = 0; i < ids.length - MAX_SKIP; i++) forget(state, ids[i]!);
}

function dhRatchet(state: RatchetState, theirNew: string): void {
  if (state.theirs !== null) {
    state.previousTheirs = [state.theirs, ...state.previousTheirs].slice(0, MAX_PREVIOUS_RATCHET_KEYS);
  }
  state.pn = state.ns;
  state.ns = 0;
  state.nr = 0;
  state.theirs = theirNew;
  const theirKey = bytesOf(theirNew, 32);
  const [rk1, recv] = kdfRoot(bytesOf(state.rootKey, 32), sodium.crypto_scalarmult(bytesOf(state.ours.secretKey, 32), theirKey));
  const pair = sodium.crypto_box_keypair();
  const [rk2, send] = kdfRoot(rk1, sodium.crypto_scalarmult(pair.privateKey, theirKey));
  state.rootKey = b64(rk2);
  state.recvChain = b64(recv);
  state.sendChain = b64(send);
  state.ours = { publicKey: b64(pair.publicKey), secretKey: b64(pair.privateKey) };
}

/**
 * Decrypts one message. Errors (the input state is untouched in every case):
 * `counter_out_of_range` (absurd counter or skip, checked first), `integrity_replay` (the
 * message key was already used), `integrity_forged_sender` (does not authenticate: forged,
 * altered, or from another session), `decrypt_failed` (a ratchet key that is not a valid point).
 */
export function ratchetDecrypt(
  state: RatchetState,
  header: RatchetHeader,
  ciphertext: Uint8Array,
  associatedData: Uint8Array,
  nonceFrom: RatchetNonce = 'carried',
): { state: RatchetState; plaintext: Uint8Array } {
  checkBounds(state, header);
  const next = clone(state);
  const ad = concat(associatedData, encodeRatchetHeader(header));
  const id = skippedId(header.dh, header.n);
  const stored = next.skipped[id];
  if (stored !== undefined) {
    const plaintext = open(bytesOf(stored, 32), ciphertext, ad, nonceFrom);
    forget(next, id);
    countReceived(next);
    return { state: next, plaintext };
  }
  try {
    if (header.dh !== next.theirs) {
      skipUntil(next, header.pn);
      dhRatchet(next, header.dh);
    }
    skipUntil(next, header.n);
  } catch (cause) {
    if (BackchannelError.is(cause)) throw cause;
    throw new BackchannelError('decrypt_failed', 'invalid ratchet key', { cause });
  }
  const [ck, mk] = kdfChain(bytesOf(next.recvChain!, 32));
  next.recvChain = b64(ck);
  next.nr += 1;
  const plaintext = open(mk, ciphertext, ad, nonceFrom);
  countReceived(next);
  return { state: next, plaintext };
}

/**
 * Deniability, made concrete: produces a message that this session will accept as coming from
 * its peer, using only this side's state. Pairwise keys are symmetric, so whoever can read a
 * message can also have written it; nothing in a transcript proves authorship to a third party.
 * It runs the receiving side's own DH ratchet step against a fresh ratchet key it makes up. The
 * state is not changed.
 */
export function ratchetForgeIncoming(
  state: RatchetState,
  plaintext: Uint8Array,
  associatedData: Uint8Array,
): { header: RatchetHeader; ciphertext: Uint8Array } {
  const fake = sodium.crypto_box_keypair();
  const header: RatchetHeader = { dh: b64(fake.publicKey), pn: state.nr, n: 0 };
  const dhOut = sodium.crypto_scalarmult(fake.privateKey, bytesOf(state.ours.publicKey, 32));
  const [, recv] = kdfRoot(bytesOf(state.rootKey, 32), dhOut);
  const [, mk] = kdfChain(recv);
  return { header, ciphertext: seal(mk, plaintext, concat(associatedData, encodeRatchetHeader(header))) };
}
