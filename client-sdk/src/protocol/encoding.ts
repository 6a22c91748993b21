/**
 * Byte encoding on the wire: every binary field is unpadded base64url text, so frames stay JSON
 * and no field is ever ambiguous between text and bytes.
 */

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
/** The alphabet as character codes, to write output as bytes. */
const CODES = new Uint8Array(64);
const LOOKUP = new Int16Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) {
  CODES[i] = ALPHABET.charCodeAt(i);
  LOOKUP[ALPHABET.charCodeAt(i)] = i;
}
const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder('utf-8', { fatal: true });

/** Node's `Buffer`, where there is one: its base64url encoder is native (and unpadded). */
interface NativeBuffer {
  from(buffer: ArrayBufferLike, byteOffset: number, length: number): { toString(encoding: 'base64url'): string };
}
const nativeBuffer = (globalThis as { Buffer?: NativeBuffer }).Buffer;

/** Encodes bytes as unpadded base64url: natively in Node, in JavaScript elsewhere (browsers). */
export const toBase64Url: (bytes: Uint8Array) => string =
  nativeBuffer === undefined ? toBase64UrlPortable : (bytes) => nativeBuffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');

/** {@link toBase64Url} without Node's `Buffer`: what browsers run. */
export function toBase64UrlPortable(bytes: Uint8Array): string {
  const len = bytes.length;
  const full = len - (len % 3);
  const out = new Uint8Array(Math.ceil((len * 4) / 3));
  let o = 0;
  for (let i = 0; i < full; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out[o++] = CODES[n >>> 18]!;
    out[o++] = CODES[(n >>> 12) & 63]!;
    out[o++] = CODES[(n >>> 6) & 63]!;
    out[o++] = CODES[n & 63]!;
  }
  if (len - full === 1) {
    const n = bytes[full]!;
    out[o++] = CODES[n >>> 2]!;
    out[o++] = CODES[(n << 4) & 63]!;
  } else if (len - full === 2) {
    const n = (bytes[full]! << 8) | bytes[full + 1]!;
    out[o++] = CODES[n >>> 10]!;
    out[o++] = CODES[(n >>> 4) & 63]!;
    out[o++] = CODES[(n << 2) & 63]!;
  }
  // Pure ASCII: decoding it as UTF-8 is a native fast path, far cheaper than appending strings.
  return textDecoder.decode(out);
}

/** Decodes unpadded base64url; returns undefined for any character or length that is not canonical. */
export function fromBase64Url(text: string): Uint8Array | undefined {
  if (text.length % 4 === 1) return undefined;
  const out = new Uint8Array(Math.floor((text.length * 3) / 4));
  let o = 0;
  let acc = 0;
  let bits = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    const v = code < 128 ? LOOKUP[code]! : -1;
    if (v < 0) return undefined;
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
  }
  // Leftover bits must be zero, or two texts would decode to the same bytes.
  if ((acc & ((1 << bits) - 1)) !== 0) return undefined;
  return out;
}

/** UTF-8 encodes a string. */
export function utf8(text: string): Uint8Array {
  return textEncoder.encode(text);
}

/** Strictly decodes UTF-8; throws a TypeError on invalid sequences. */
export function fromUtf8(bytes: Uint8Array): string {
  return textDecoder.decode(bytes);
}
