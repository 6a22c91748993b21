/**
 * @internal Byte helpers shared by the crypto layer: concatenation, fixed-width integers and
 * strict base64url decoding of persisted or received fields.
 */
import { BackchannelError, fromBase64Url, toBase64Url, utf8 } from '../protocol/index.js';
import type { ErrorCode } from '../protocol/index.js';

/** A byte field given either as bytes or as its unpadded base64url text. */
export type BytesLike = Uint8Array | string;

/** @internal Concatenates byte arrays. */
export function concat(...parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** @internal 4-byte big-endian unsigned integer. */
export function u32be(n: number): Uint8Array {
  const out = new Uint8Array(4);
  putU32be(out, 0, n);
  return out;
}

/** @internal Writes `n` as a 4-byte big-endian unsigned integer at `offset`, without allocating. */
export function putU32be(out: Uint8Array, offset: number, n: number): void {
  if (!Number.isInteger(n) || n < 0 || n > 0xffff_ffff) throw new RangeError(`not a u32: ${n}`);
  out[offset] = n >>> 24;
  out[offset + 1] = (n >>> 16) & 0xff;
  out[offset + 2] = (n >>> 8) & 0xff;
  out[offset + 3] = n & 0xff;
}

/** @internal 8-byte big-endian unsigned integer (safe-integer range only). */
export function u64be(n: number): Uint8Array {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`not a u64 safe integer: ${n}`);
  // Split without BigInt: both halves are exact below 2^53.
  const hi = Math.floor(n / 0x1_0000_0000);
  const lo = n >>> 0;
  return Uint8Array.of(hi >>> 24, (hi >>> 16) & 0xff, (hi >>> 8) & 0xff, hi & 0xff, lo >>> 24, (lo >>> 16) & 0xff, (lo >>> 8) & 0xff, lo & 0xff);
}

/** @internal A length-prefixed (u32 BE) field, so variable-length parts never run together. */
export function lp(bytes: Uint8Array): Uint8Array {
  return concat(u32be(bytes.length), bytes);
}

/** @internal A domain-separation label as bytes. */
export function label(text: string): Uint8Array {
  return utf8(text);
}

/**
 * @internal Decodes a base64url field (or passes bytes through) and checks its length.
 * Programming errors (our own state) throw RangeError; use {@link decodeReceived} for peer input.
 */
export function bytesOf(value: BytesLike, length?: number, what = 'field'): Uint8Array {
  const bytes = typeof value === 'string' ? fromBase64Url(value) : value;
  if (bytes === undefined) throw new RangeError(`${what} is not canonical base64url`);
  if (length !== undefined && bytes.length !== length) {
    throw new RangeError(`${what} must be ${length} bytes, got ${bytes.length}`);
  }
  return bytes;
}

/** @internal Like {@link bytesOf} but failing with a stable code, for data that came off the wire. */
export function decodeReceived(value: string, code: ErrorCode, what: string, length?: number): Uint8Array {
  const bytes = fromBase64Url(value);
  if (bytes === undefined || (length !== undefined && bytes.length !== length)) {
    throw new BackchannelError(code, `${what} is malformed`);
  }
  return bytes;
}

/** @internal Base64url text of bytes. */
export const b64 = toBase64Url;

/** @internal Constant-time equality of two byte arrays (false when lengths differ). */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/** @internal Sequential reader over a byte array; every overrun throws `code`. */
export class ByteReader {
  private offset = 0;
  constructor(
    private readonly bytes: Uint8Array,
    private readonly code: ErrorCode,
  ) {}

  /** Bytes not read yet. */
  get remaining(): number {
    return this.bytes.length - this.offset;
  }

  /** Current position. */
  get position(): number {
    return this.offset;
  }

  take(n: number): Uint8Array {
    if (n < 0 || this.offset + n > this.bytes.length) {
      throw new BackchannelError(this.code, 'truncated data');
    }
    const out = this.bytes.subarray(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }

  u8(): number {
    return this.take(1)[0]!;
  }

  u32(): number {
    const b = this.take(4);
    return new DataView(b.buffer, b.byteOffset, 4).getUint32(0, false);
  }

  u64(): number {
    const b = this.take(8);
    const v = new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, false);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new BackchannelError(this.code, 'integer out of range');
    return Number(v);
  }

  /** Asserts that everything was consumed: trailing bytes would make two encodings equal. */
  end(): void {
    if (this.offset !== this.bytes.length) throw new BackchannelError(this.code, 'trailing data');
  }
}
