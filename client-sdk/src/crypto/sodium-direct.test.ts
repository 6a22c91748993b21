import { beforeAll, describe, expect, it } from 'vitest';
import { sodium, sodiumReady } from '../sodium.js';
import { direct, directSodium, type DirectSodium } from './sodium-direct.js';
import { KDF_CTX_CHAIN, KDF_CTX_HEADER } from './kdf.js';

beforeAll(async () => {
  await sodiumReady();
});

const IDS = [0, 1, 2, 3, 255, 256, 65_535, 0x7fff_ffff, 0xffff_ffff, 0x1_0000_0000, 0x1_0000_0001, 2 ** 40 + 5, Number.MAX_SAFE_INTEGER];
const CONTEXTS = [KDF_CTX_CHAIN, KDF_CTX_HEADER, '12345678', '        ', '~~~~~~~~'];
/** Short and long, below and above every scratch size reached before, and back. */
const MESSAGE_LENGTHS = [0, 1, 15, 16, 17, 150, 1_024, 33_000, 70_000, 3, 200_000, 40];
/** Without a usable module: the wrappers themselves, so the fallback is checked the same way. */
const IMPLEMENTATIONS: [string, () => DirectSodium][] = [
  ['direct', direct],
  ['fallback', () => directSodium({ HEAPU8: new Uint8Array(8), _malloc: () => 0 })],
];

const hex = (bytes: Uint8Array) => sodium.to_hex(bytes);
const wrapperDecrypt = (c: Uint8Array, ad: Uint8Array, nonce: Uint8Array, key: Uint8Array) =>
  sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(null, c, ad, nonce, key);

describe.each(IMPLEMENTATIONS)('libsodium calls (%s)', (_, impl) => {
  it('derives exactly what crypto_kdf_derive_from_key derives, for every id, context, key and length', () => {
    let checked = 0;
    for (const id of IDS) {
      for (const context of CONTEXTS) {
        for (let length = 16; length <= 64; length += id % 2 === 0 ? 1 : 7) {
          const key = sodium.randombytes_buf(32);
          expect(hex(impl().deriveSubkey(length, id, context, key))).toBe(hex(sodium.crypto_kdf_derive_from_key(length, BigInt(id), context, key)));
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(1_000);
  });

  it('encrypts exactly as XChaCha20-Poly1305 does, and opens only what was sealed', () => {
    for (const [i, length] of MESSAGE_LENGTHS.entries()) {
      const message = sodium.randombytes_buf(length);
      const ad = sodium.randombytes_buf((i * 37) % 200);
      const nonce = sodium.randombytes_buf(24);
      const key = sodium.randombytes_buf(32);
      const sealed = impl().aeadEncrypt(message, ad, nonce, key);
      expect(hex(sealed)).toBe(hex(sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(message, ad, null, nonce, key)));
      expect(hex(impl().aeadDecrypt(sealed, ad, nonce, key))).toBe(hex(message));
      // Tampering with any input fails here exactly when it fails in the wrappers: always.
      const flipped = sealed.slice();
      flipped[i % flipped.length]! ^= 1;
      const otherAd = Uint8Array.of(...ad, 0);
      const otherNonce = nonce.slice();
      otherNonce[0]! ^= 1;
      const otherKey = key.slice();
      otherKey[31]! ^= 0x80;
      for (const [c, a, n, k] of [
        [flipped, ad, nonce, key],
        [sealed, otherAd, nonce, key],
        [sealed, ad, otherNonce, key],
        [sealed, ad, nonce, otherKey],
        [sealed.subarray(0, 15), ad, nonce, key],
      ] as const) {
        expect(() => wrapperDecrypt(c, a, n, k)).toThrow();
        expect(() => impl().aeadDecrypt(c, a, n, k)).toThrow();
      }
    }
  });

  it('encrypts under subkey 1 of a base key exactly as deriving it and encrypting does', () => {
    for (const [i, length] of MESSAGE_LENGTHS.entries()) {
      const message = sodium.randombytes_buf(length);
      const ad = sodium.randombytes_buf((i * 53) % 180);
      const base = sodium.randombytes_buf(32);
      const nonce = sodium.randombytes_buf(24);
      const context = CONTEXTS[i % CONTEXTS.length]!;
      const key = sodium.crypto_kdf_derive_from_key(32, 1, context, base);
      const sealed = impl().aeadEncryptUnderSubkey(message, ad, nonce, base, context);
      expect(hex(sealed)).toBe(hex(sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(message, ad, null, nonce, key)));
      expect(hex(impl().aeadDecryptUnderSubkey(sealed, ad, nonce, base, context))).toBe(hex(message));
      const otherBase = base.slice();
      otherBase[i % 32]! ^= 1;
      const otherNonce = nonce.slice();
      otherNonce[i % 24]! ^= 1;
      const otherContext = context === KDF_CTX_HEADER ? KDF_CTX_CHAIN : KDF_CTX_HEADER;
      expect(() => impl().aeadDecryptUnderSubkey(sealed, ad, nonce, otherBase, context)).toThrow();
      expect(() => impl().aeadDecryptUnderSubkey(sealed, ad, otherNonce, base, context)).toThrow();
      expect(() => impl().aeadDecryptUnderSubkey(sealed, ad, nonce, base, otherContext)).toThrow();
      expect(() => impl().aeadDecryptUnderSubkey(sealed.subarray(1), ad, nonce, base, context)).toThrow();
    }
  });

  it('returns fresh arrays and leaves its inputs alone', () => {
    const key = sodium.randombytes_buf(32);
    const nonce = sodium.randombytes_buf(24);
    const message = sodium.randombytes_buf(100);
    const copies = [key, nonce, message].map((b) => b.slice());
    const a = impl().deriveSubkey(32, 1, KDF_CTX_CHAIN, key);
    const b = impl().deriveSubkey(32, 1, KDF_CTX_CHAIN, key);
    expect(a).not.toBe(b);
    a.fill(0);
    expect(impl().deriveSubkey(32, 1, KDF_CTX_CHAIN, key)).toEqual(b);
    const sealed = impl().aeadEncrypt(message, new Uint8Array(0), nonce, key);
    const opened = impl().aeadDecrypt(sealed, new Uint8Array(0), nonce, key);
    opened.fill(0);
    expect(impl().aeadDecrypt(sealed, new Uint8Array(0), nonce, key)).toEqual(message);
    expect([key, nonce, message]).toEqual(copies);
  });

  it('refuses lengths, ids, keys, nonces and contexts libsodium does not define', () => {
    const key = sodium.randombytes_buf(32);
    const nonce = sodium.randombytes_buf(24);
    expect(() => impl().deriveSubkey(15, 1, KDF_CTX_CHAIN, key)).toThrow();
    expect(() => impl().deriveSubkey(65, 1, KDF_CTX_CHAIN, key)).toThrow();
    expect(() => impl().deriveSubkey(32, -1, KDF_CTX_CHAIN, key)).toThrow();
    expect(() => impl().deriveSubkey(32, 1.5, KDF_CTX_CHAIN, key)).toThrow();
    expect(() => impl().deriveSubkey(32, 1, KDF_CTX_CHAIN, key.subarray(1))).toThrow();
    expect(() => impl().deriveSubkey(32, 1, 'bc_chai', key)).toThrow();
    // Rather than encode it one way here and another way there.
    expect(() => impl().deriveSubkey(32, 1, 'bc_chäin', key)).toThrow(RangeError);
    expect(() => impl().aeadEncrypt(new Uint8Array(4), new Uint8Array(0), nonce.subarray(1), key)).toThrow();
    expect(() => impl().aeadEncrypt(new Uint8Array(4), new Uint8Array(0), nonce, key.subarray(1))).toThrow();
    expect(() => impl().aeadEncryptUnderSubkey(new Uint8Array(4), new Uint8Array(0), nonce, key.subarray(1), KDF_CTX_HEADER)).toThrow();
    expect(() => impl().aeadEncryptUnderSubkey(new Uint8Array(4), new Uint8Array(0), nonce, key, 'short')).toThrow();
    expect(() => impl().aeadEncryptUnderSubkey(new Uint8Array(4), new Uint8Array(0), nonce.subarray(1), key, KDF_CTX_HEADER)).toThrow();
  });
});
