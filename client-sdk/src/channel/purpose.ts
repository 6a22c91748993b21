import { fromBase64Url, fromUtf8, toBase64Url, utf8 } from '../protocol/index.js';
import { sodium } from '../sodium.js';

const AD = utf8('backchannel/purpose/v1');
const NONCE = 24;

/** A fresh key for a charter's purpose text (call `sodiumReady()` first). */
export function newPurposeKey(): string {
  return toBase64Url(sodium.crypto_aead_xchacha20poly1305_ietf_keygen());
}

/** Encrypts the purpose so the relay stores only ciphertext; the key travels in invitations. */
export function sealPurpose(text: string, key: string): string {
  const nonce = sodium.randombytes_buf(NONCE);
  const ct = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(utf8(text), AD, null, nonce, fromBase64Url(key)!);
  const out = new Uint8Array(NONCE + ct.length);
  out.set(nonce, 0);
  out.set(ct, NONCE);
  return toBase64Url(out);
}

/** Opens the purpose; undefined when it does not open under `key`. */
export function openPurpose(sealed: string, key: string): string | undefined {
  const bytes = fromBase64Url(sealed);
  const k = fromBase64Url(key);
  if (bytes === undefined || k === undefined || bytes.length < NONCE + 16) return undefined;
  try {
    return fromUtf8(sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(null, bytes.subarray(NONCE), AD, bytes.subarray(0, NONCE), k));
  } catch {
    return undefined;
  }
}
