import { describe, expect, it } from 'vitest';
import { randomBytes } from './random.js';

const hex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

describe('randomBytes (pooled platform randomness)', () => {
  it('never hands out the same bytes twice, across many pool refills and odd sizes', () => {
    const seen = new Set<string>();
    let total = 0;
    for (let i = 0; i < 5_000; i++) {
      const n = 16 + (i % 97); // crosses the 4 KiB refill boundary at every offset
      const out = randomBytes(n);
      expect(out.length).toBe(n);
      total += n;
      const head = hex(out.subarray(0, 16));
      expect(seen.has(head)).toBe(false);
      seen.add(head);
    }
    expect(total).toBeGreaterThan(50 * 4_096);
  });

  it('returns independent arrays: changing one changes no other, nor later draws', () => {
    const a = randomBytes(32);
    const copy = a.slice();
    const b = randomBytes(32);
    b.fill(0);
    expect(a).toEqual(copy);
    a.fill(0);
    expect(randomBytes(32).some((x) => x !== 0)).toBe(true);
  });

  it('draws large requests directly, and refuses bad lengths', () => {
    expect(randomBytes(20_000).length).toBe(20_000);
    expect(randomBytes(0).length).toBe(0);
    for (const bad of [-1, 1.5, 65_537, Number.NaN]) expect(() => randomBytes(bad)).toThrow(RangeError);
  });

  it('looks uniform: every byte value appears, none far more often than the rest', () => {
    const counts = new Array<number>(256).fill(0);
    for (let i = 0; i < 1_000; i++) for (const x of randomBytes(88)) counts[x]!++;
    const expected = (1_000 * 88) / 256;
    for (const c of counts) {
      expect(c).toBeGreaterThan(expected * 0.6);
      expect(c).toBeLessThan(expected * 1.4);
    }
  });
});
