/**
 * Purpose-separated key derivation. The standard libsodium build has no HMAC or HKDF at runtime,
 * so HKDF's extract-then-expand shape is rebuilt on keyed BLAKE2b, and the per-message chain
 * steps use `crypto_kdf_derive_from_key` (itself keyed BLAKE2b with a salt/personal block).
 *
 * Every derived key names its purpose, so a key made for one use can never be mistaken for
 * another:
 *
 * | use                               | derivation                                     | context / info                    |
 * | --------------------------------- | ---------------------------------------------- | --------------------------------- |
 * | X3DH shared secret                | hkdf(salt = 0^32, ikm = 0xFF^32‖DH1‖DH2‖DH3[‖DH4]) | `backchannel/x3dh/v1`          |
 * | ratchet root step (RK, CK)        | hkdf(salt = RK, ikm = DH output), 64 bytes      | `backchannel/ratchet/root/v1`     |
 * | chain step: next chain key        | crypto_kdf(id 1)                                | `bc_chain`                        |
 * | chain step: message key           | crypto_kdf(id 2)                                | `bc_chain`                        |
 * | header AEAD key from MK           | crypto_kdf(id 1, 32 B); the nonce is random     | `bc_hdrky`                        |
 * | franking commitment               | BLAKE2b-256 keyed by k_f over label ‖ plaintext | `backchannel/frank/v1`            |
 * | relay authentication proof        | see `auth-proof.ts`                             | `backchannel/auth/v1`             |
 */
import { concat, label, u32be } from './bytes.js';
import { sodium } from '../sodium.js';
import { direct } from './sodium-direct.js';

/** Info label of the X3DH shared secret. */
export const KDF_INFO_X3DH = 'backchannel/x3dh/v1';
/** Info label of a Double Ratchet root step. */
export const KDF_INFO_ROOT = 'backchannel/ratchet/root/v1';
/** crypto_kdf context (exactly 8 characters) of a symmetric chain step. */
export const KDF_CTX_CHAIN = 'bc_chain';
/** crypto_kdf context of the header AEAD key derived from a message key. */
export const KDF_CTX_HEADER = 'bc_hdrky';

const EXPAND_PREFIX = label('backchannel/kdf/v1');
const ZERO_SALT = new Uint8Array(32);

/**
 * HKDF-Extract over keyed BLAKE2b-512: PRK = BLAKE2b(key = salt, ikm). An empty salt becomes 32
 * zero bytes because BLAKE2b keys must be 16–64 bytes.
 */
export function kdfExtract(salt: Uint8Array, ikm: Uint8Array): Uint8Array {
  const key = salt.length === 0 ? ZERO_SALT : salt;
  if (key.length < 16 || key.length > 64) throw new RangeError('salt must be 16..64 bytes');
  return sodium.crypto_generichash(64, ikm, key);
}

/**
 * HKDF-Expand over keyed BLAKE2b-512: T(i) = BLAKE2b(key = PRK, T(i-1) ‖ "backchannel/kdf/v1" ‖
 * len(info) ‖ info ‖ i), output = T(1) ‖ T(2) … truncated to `length` (at most 255 blocks).
 */
export function kdfExpand(prk: Uint8Array, info: string, length: number): Uint8Array {
  if (length < 1 || length > 255 * 64) throw new RangeError('bad output length');
  const infoBytes = label(info);
  const out = new Uint8Array(length);
  let prev: Uint8Array = new Uint8Array(0);
  let o = 0;
  for (let i = 1; o < length; i++) {
    const block = sodium.crypto_generichash(
      64,
      concat(prev, EXPAND_PREFIX, u32be(infoBytes.length), infoBytes, Uint8Array.of(i)),
      prk,
    );
    out.set(block.subarray(0, Math.min(64, length - o)), o);
    o += 64;
    prev = block;
  }
  return out;
}

/** Extract-then-expand in one call. */
export function hkdf(ikm: Uint8Array, salt: Uint8Array, info: string, length: number): Uint8Array {
  const prk = kdfExtract(salt, ikm);
  const out = kdfExpand(prk, info, length);
  prk.fill(0);
  return out;
}

/**
 * A subkey of `key` for `(context, id)` via crypto_kdf_derive_from_key (16–64 bytes out), called
 * without the wrapper's per-call allocations (see `sodium-direct.ts`).
 */
export function subkey(key: Uint8Array, context: string, id: number, length: number): Uint8Array {
  return direct().deriveSubkey(length, id, context, key);
}
