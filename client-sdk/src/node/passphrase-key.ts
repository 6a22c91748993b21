/**
 * A key store key from a passphrase, by scrypt (RFC 7914) from `node:crypto`.
 *
 * Why scrypt: it is memory-hard (each guess needs 128·N·r bytes of memory, 128 MiB at the
 * defaults, so GPUs and ASICs gain little over the defender), it ships with Node (no new
 * dependency; Argon2id would need `libsodium-wrappers-sumo`, as the standard build the SDK uses
 * has no `crypto_pwhash`), and Node runs it on its thread pool, so unlocking a store does not
 * stall the event loop. The defaults (N = 2^17, r = 8, p = 1) are OWASP's scrypt minimum;
 * about 0.6 s on one core here. The parameters and the salt are stored with the ciphertext, and
 * authenticated with it, so a store opened later derives the same key.
 */
import { scrypt, randomBytes } from 'node:crypto';
import { BackchannelError } from '../protocol/index.js';

/** scrypt parameters and salt as stored in a key store file. */
export interface ScryptHeader {
  name: 'scrypt';
  /** Cost (a power of two). */
  N: number;
  r: number;
  p: number;
  /** 16 random bytes, base64url. */
  salt: string;
}

/** Default cost: N = 2^17, r = 8, p = 1 (128 MiB, OWASP's minimum for scrypt). */
export const SCRYPT_DEFAULTS = { N: 2 ** 17, r: 8, p: 1 } as const;
/** The lowest cost a store accepts, on write and on open (16 MiB). */
const MIN_N = 2 ** 14;
const MAX_N = 2 ** 22;
const SALT_BYTES = 16;

/** A fresh header (new salt) with cost `N`. */
export function newScryptHeader(N: number = SCRYPT_DEFAULTS.N): ScryptHeader {
  checkCost(N);
  return { name: 'scrypt', N, r: SCRYPT_DEFAULTS.r, p: SCRYPT_DEFAULTS.p, salt: randomBytes(SALT_BYTES).toString('base64url') };
}

function checkCost(N: number): void {
  if (!Number.isInteger(N) || N < MIN_N || N > MAX_N || (N & (N - 1)) !== 0) {
    throw new RangeError(`scrypt N must be a power of two from 2^14 to 2^22`);
  }
}

/**
 * The 32-byte key for `passphrase` under `header`. The passphrase is NFC-normalised, so the
 * same words typed on different systems give the same key. A header outside the accepted
 * range (say, a file whose cost was lowered) is `keystore_invalid`.
 */
export function passphraseKey(passphrase: string, header: ScryptHeader): Promise<Uint8Array> {
  if (passphrase.length === 0) throw new RangeError('the passphrase is empty');
  try {
    checkCost(header.N);
  } catch (cause) {
    throw new BackchannelError('keystore_invalid', 'key store KDF parameters out of range', { cause });
  }
  if (header.r !== SCRYPT_DEFAULTS.r || header.p !== SCRYPT_DEFAULTS.p) {
    throw new BackchannelError('keystore_invalid', 'key store KDF parameters out of range');
  }
  const salt = Buffer.from(header.salt, 'base64url');
  if (salt.length !== SALT_BYTES) throw new BackchannelError('keystore_invalid', 'key store salt has the wrong length');
  const secret = Buffer.from(passphrase.normalize('NFC'), 'utf8');
  return new Promise((resolve, reject) => {
    scrypt(secret, salt, 32, { N: header.N, r: header.r, p: header.p, maxmem: 256 * header.N * header.r }, (err, key) => {
      secret.fill(0);
      if (err) reject(err);
      else resolve(new Uint8Array(key.buffer, key.byteOffset, key.length));
    });
  });
}
