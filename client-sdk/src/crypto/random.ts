/**
 * @internal Fresh randomness for per-message secrets, in one draw.
 *
 * libsodium-wrappers' `randombytes_buf` fills its buffer four bytes at a time, each through a
 * JavaScript callback into `globalThis.crypto.getRandomValues`: a message's nonce, message key
 * and franking key cost 22 such round trips. This asks the same source (libsodium-wrappers
 * refuses to load without it, so no platform loses anything) once for all of them.
 */

/** Most bytes `crypto.getRandomValues` returns in one call (Web Crypto's quota). */
const MAX_DRAW = 65_536;

/** @internal `length` bytes from the platform CSPRNG, fresh on every call. */
export function randomBytes(length: number): Uint8Array {
  if (!Number.isInteger(length) || length < 0 || length > MAX_DRAW) throw new RangeError(`bad random length: ${length}`);
  const out = new Uint8Array(length);
  globalThis.crypto.getRandomValues(out);
  return out;
}
