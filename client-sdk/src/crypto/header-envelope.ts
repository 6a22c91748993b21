/**
 * The bytes of a pairwise header envelope: what the relay carries for one recipient, opaque to it.
 *
 * Version 2 (sent):
 *
 *   version u8 (=2) ‖ meta nonce (24) ‖ XChaCha20-Poly1305(pair key, meta, AD_meta)   (113 + 16)
 *   ‖ ratchet ciphertext: nonce (24) ‖ XChaCha20-Poly1305(message key's header key, pad(payload), AD)
 *
 *   meta = flags u8 (bit 0: X3DH prefix, bit 1: one-time prekey used)
 *          ‖ prefix slot (72: IK 32 ‖ EK 32 ‖ SPK id u32 ‖ OPK id u32, zeros where absent)
 *          ‖ ratchet header (40: DH 32 ‖ PN u32 ‖ N u32)
 *
 * Every version 2 envelope has the same size (the payload is padded to 320 bytes, the prefix
 * slot is always there), and its flags, X3DH prefix, ratchet key and counters are encrypted
 * under a **pair key** the two members derive from their member keys (X25519) and the relay
 * cannot: so the relay no longer learns from a header which pairs have never answered each
 * other (the prefix is repeated until the first reply) nor when a pair's ratchet turns.
 *
 * Version 1 (opened, never sent): version ‖ flags ‖ [IK ‖ EK ‖ SPK id ‖ [OPK id]] ‖ ratchet
 * header ‖ ciphertext under a nonce derived from the message key, payload unpadded, all clear.
 */
import { BackchannelError, HEADER_ENVELOPE_VERSION } from '../protocol/index.js';
import { sodium } from '../sodium.js';
import { ByteReader, b64, bytesOf, concat, label, putU32be, type BytesLike } from './bytes.js';
import { RATCHET_HEADER_BYTES, readRatchetHeader, type RatchetHeader, type RatchetNonce } from './double-ratchet.js';
import { unpad } from './padding.js';
import { randomBytes } from './random.js';
import { direct } from './sodium-direct.js';
import type { X3dhPrefix } from './x3dh.js';

/** Envelopes sealed before headers were hidden and padded: opened, never made. */
const LEGACY_ENVELOPE_VERSION = 1;
const FLAG_PREFIX = 1;
const FLAG_OPK = 2;
const NONCE_BYTES = 24;
const TAG_BYTES = 16;
const PREFIX_SLOT_BYTES = 72;
/** flags ‖ prefix slot: the part of the meta before the ratchet header. */
const META_HEAD_BYTES = 1 + PREFIX_SLOT_BYTES;
const META_BYTES = META_HEAD_BYTES + RATCHET_HEADER_BYTES;
const PAIR_LABEL = label('backchannel/pair-key/v2');
const META_LABEL = label('backchannel/header-meta/v2');

/** A parsed envelope, its meta opened. */
export interface OpenedEnvelope {
  prefix: X3dhPrefix | null;
  header: RatchetHeader;
  /** The clear bytes the ratchet AEAD authenticates before the ratchet header. */
  clear: Uint8Array;
  /** The ratchet ciphertext. */
  ciphertext: Uint8Array;
  nonceFrom: RatchetNonce;
  /** Removes the payload's padding (none in version 1). */
  unpad(payload: Uint8Array): Uint8Array;
}

/**
 * The pair key of two members of `channel`: BLAKE2b-256 keyed by a label over X25519(ours,
 * theirs), the channel and both member keys in a fixed order, so either member computes the
 * same key and no one else can. Secret; kept with the sessions (`PeerSessions.pairKey`).
 */
export function derivePairKey(ourSecret: BytesLike, ourPublic: string, theirPublic: string, channel: BytesLike): string {
  const shared = sodium.crypto_scalarmult(bytesOf(ourSecret, 32, 'member secret'), bytesOf(theirPublic, 32, 'member key'));
  const [a, b] = ourPublic < theirPublic ? [ourPublic, theirPublic] : [theirPublic, ourPublic];
  const key = sodium.crypto_generichash(32, concat(shared, bytesOf(channel, 16, 'channel'), bytesOf(a, 32), bytesOf(b, 32)), PAIR_LABEL);
  shared.fill(0);
  return b64(key);
}

function metaAd(channel: BytesLike, sender: BytesLike, recipient: BytesLike): Uint8Array {
  return concat(META_LABEL, Uint8Array.of(HEADER_ENVELOPE_VERSION), bytesOf(channel, 16, 'channel'), bytesOf(sender, 32, 'sender key'), bytesOf(recipient, 32, 'recipient key'));
}

/** version ‖ flags ‖ prefix slot: the clear bytes the ratchet AEAD binds (the ratchet header follows). */
export function envelopeClear(prefix: X3dhPrefix | null): Uint8Array {
  const out = new Uint8Array(1 + META_HEAD_BYTES);
  out[0] = HEADER_ENVELOPE_VERSION;
  if (prefix === null) return out;
  out[1] = FLAG_PREFIX | (prefix.opkId === null ? 0 : FLAG_OPK);
  out.set(bytesOf(prefix.ik, 32), 2);
  out.set(bytesOf(prefix.ek, 32), 34);
  putU32be(out, 66, prefix.spkId);
  if (prefix.opkId !== null) putU32be(out, 70, prefix.opkId);
  return out;
}

/**
 * Assembles a version 2 envelope from `clear` ({@link envelopeClear}), the ratchet header and
 * ciphertext, encrypting the meta under `pairKey`.
 */
export function sealEnvelope(
  pairKey: string,
  ids: { channel: BytesLike; sender: BytesLike; recipient: BytesLike },
  clear: Uint8Array,
  headerBytes: Uint8Array,
  ratchetCiphertext: Uint8Array,
): Uint8Array {
  const nonce = randomBytes(NONCE_BYTES);
  const meta = concat(clear.subarray(1), headerBytes);
  const sealedMeta = direct().aeadEncrypt(meta, metaAd(ids.channel, ids.sender, ids.recipient), nonce, bytesOf(pairKey, 32));
  return concat(Uint8Array.of(HEADER_ENVELOPE_VERSION), nonce, sealedMeta, ratchetCiphertext);
}

function readPrefix(r: ByteReader, flags: number, padded: boolean): X3dhPrefix | null {
  if ((flags & ~(FLAG_PREFIX | FLAG_OPK)) !== 0 || flags === FLAG_OPK) {
    throw new BackchannelError('decrypt_failed', 'unknown envelope flags');
  }
  if (!(flags & FLAG_PREFIX)) {
    if (padded) r.take(PREFIX_SLOT_BYTES);
    return null;
  }
  const ik = b64(r.take(32));
  const ek = b64(r.take(32));
  const spkId = r.u32();
  const opkId = flags & FLAG_OPK ? r.u32() : null;
  if (padded && opkId === null) r.take(4);
  return { ik, ek, spkId, opkId };
}

/**
 * Opens an envelope from `sender`: version 2 with `pairKey`, version 1 as it is. Errors: `decrypt_failed` (unknown version or flags, truncated), `integrity_forged_sender`
 * (the meta does not authenticate under the pair key: altered, or not from `sender`).
 */
export function openEnvelope(
  envelope: Uint8Array,
  ids: { channel: BytesLike; sender: BytesLike; recipient: BytesLike },
  pairKey: string,
): OpenedEnvelope {
  const outer = new ByteReader(envelope, 'decrypt_failed');
  const version = outer.u8();
  if (version === LEGACY_ENVELOPE_VERSION) {
    const prefix = readPrefix(outer, outer.u8(), false);
    const clear = envelope.subarray(0, outer.position);
    const header = readRatchetHeader(outer);
    return { prefix, header, clear, ciphertext: outer.take(outer.remaining), nonceFrom: 'derived', unpad: (p) => p };
  }
  if (version !== HEADER_ENVELOPE_VERSION) throw new BackchannelError('decrypt_failed', 'unknown envelope version');
  const nonce = outer.take(NONCE_BYTES);
  const sealedMeta = outer.take(META_BYTES + TAG_BYTES);
  let meta: Uint8Array;
  try {
    meta = direct().aeadDecrypt(sealedMeta, metaAd(ids.channel, ids.sender, ids.recipient), nonce, bytesOf(pairKey, 32));
  } catch (cause) {
    throw new BackchannelError('integrity_forged_sender', 'header does not authenticate as from its sender', { cause });
  }
  const r = new ByteReader(meta, 'decrypt_failed');
  const prefix = readPrefix(r, r.u8(), true);
  const header = readRatchetHeader(r);
  return {
    prefix,
    header,
    clear: concat(Uint8Array.of(version), meta.subarray(0, META_HEAD_BYTES)),
    ciphertext: outer.take(outer.remaining),
    nonceFrom: 'carried',
    unpad: (p) => unpad(p),
  };
}
