import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fromBase64Url, toBase64Url, toBase64UrlPortable } from './encoding.js';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** RFC 4648 §5 without padding, one bit at a time: slow and obviously right. */
function reference(bytes: Uint8Array): string {
  let bits = '';
  for (const b of bytes) bits += b.toString(2).padStart(8, '0');
  let out = '';
  for (let i = 0; i < bits.length; i += 6) out += ALPHABET[parseInt(bits.slice(i, i + 6).padEnd(6, '0'), 2)];
  return out;
}

describe('base64url', () => {
  it('encodes as RFC 4648 base64url without padding, and decodes back', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), (bytes) => {
        const text = toBase64Url(bytes);
        expect(text).toBe(reference(bytes));
        // The browsers' encoder, and views into a larger buffer (Node's native path takes offsets).
        expect(toBase64UrlPortable(bytes)).toBe(text);
        const framed = new Uint8Array(bytes.length + 7);
        framed.set(bytes, 3);
        expect(toBase64Url(framed.subarray(3, 3 + bytes.length))).toBe(text);
        expect(fromBase64Url(text)).toEqual(bytes);
      }),
    );
  });

  it('refuses text that is not the one canonical encoding of some bytes', () => {
    for (const text of ['A', 'AAAAA', 'AB', 'AAB', 'AA==', 'AA+A', 'AA/A', 'AA A', 'AAé', 'AA\u0100A']) {
      expect(fromBase64Url(text)).toBeUndefined();
    }
    fc.assert(
      fc.property(fc.string({ maxLength: 12 }), (text) => {
        const bytes = fromBase64Url(text);
        if (bytes !== undefined) expect(toBase64Url(bytes)).toBe(text);
      }),
    );
  });
});
