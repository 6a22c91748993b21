/**
 * Length hiding for message bodies: the plaintext is padded to a size bucket (256 B, 1 KiB,
 * 4 KiB, 16 KiB, then multiples of 16 KiB) with ISO/IEC 7816-4 padding (0x80 then zeros), which
 * unpads unambiguously for any plaintext, including one that ends in zeros.
 */
import { BackchannelError } from '../protocol/index.js';

const BUCKETS = [256, 1024, 4096, 16384] as const;
const STEP = 16384;

/** The padded size for a plaintext of `length` bytes (at least one padding byte is always added). */
export function paddedLength(length: number): number {
  const needed = length + 1;
  for (const b of BUCKETS) if (needed <= b) return b;
  return Math.ceil(needed / STEP) * STEP;
}

/** Pads `plaintext` to its bucket. */
export function pad(plaintext: Uint8Array): Uint8Array {
  const out = new Uint8Array(paddedLength(plaintext.length));
  out.set(plaintext, 0);
  out[plaintext.length] = 0x80;
  return out;
}

/** Pads to exactly `length` bytes (same scheme as {@link pad}); RangeError when it does not fit. */
export function padTo(plaintext: Uint8Array, length: number): Uint8Array {
  if (plaintext.length >= length) throw new RangeError('too large to pad to this length');
  const out = new Uint8Array(length);
  out.set(plaintext, 0);
  out[plaintext.length] = 0x80;
  return out;
}

/** Removes padding; a buffer not produced by {@link pad} fails with `decrypt_failed`. */
export function unpad(padded: Uint8Array): Uint8Array {
  let i = padded.length - 1;
  while (i >= 0 && padded[i] === 0) i--;
  if (i < 0 || padded[i] !== 0x80) throw new BackchannelError('decrypt_failed', 'bad body padding');
  return padded.subarray(0, i);
}
