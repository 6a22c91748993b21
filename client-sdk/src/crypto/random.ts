/**
 * Fresh randomness for per-message secrets (not exported from the package).
 *
 * libsodium-wrappers' `randombytes_buf` fills its buffer four bytes at a time, each through a
 * JavaScript callback into `globalThis.crypto.getRandomValues`: a message's nonce, message key
 * and franking key cost 22 such round trips. This asks the same source (libsodium-wrappers
 * refuses to load without it, so no platform loses anything) for 4 KiB at a time and hands it out
 * in order, as Node's own `crypto.randomUUID` does with its pool: each call to
 * `getRandomValues` costs several microseconds whatever its size. A byte handed out is zeroed in
 * the pool at once, so no byte is ever handed out twice and used ones do not linger.
 */

/** Bytes drawn from the platform per refill. */
const POOL_BYTES = 4_096;
/** Most bytes `crypto.getRandomValues` returns in one call (Web Crypto's quota). */
const MAX_DRAW = 65_536;

let pool = new Uint8Array(0);
let next = 0;

/** `length` bytes from the platform CSPRNG, never handed out before. */
export function randomBytes(length: number): Uint8Array {
  if (!Number.isInteger(length) || length < 0 || length > MAX_DRAW) throw new RangeError(`bad random length: ${length}`);
  if (length > POOL_BYTES / 4) {
    const out = new Uint8Array(length);
    globalThis.crypto.getRandomValues(out);
    return out;
  }
  if (next + length > pool.length) {
    pool.fill(0);
    pool = new Uint8Array(POOL_BYTES);
    globalThis.crypto.getRandomValues(pool);
    next = 0;
  }
  const out = pool.slice(next, next + length);
  pool.fill(0, next, next + length);
  next += length;
  return out;
}
