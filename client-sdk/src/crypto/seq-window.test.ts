import { describe, expect, it } from 'vitest';
import { windowGet, windowSet, windowSize, type SeqWindow } from './seq-window.js';

/** The old representation: a record keyed by sequence, its lowest key dropped while over the limit. */
class ReferenceWindow {
  readonly map = new Map<number, string>();
  constructor(private readonly limit: number) {}

  set(seq: number, value: string): void {
    this.map.set(seq, value);
    while (this.map.size > this.limit) this.map.delete(Math.min(...this.map.keys()));
  }
}

/** A deterministic PRNG (mulberry32), so a failure reproduces. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

function expectSameAs(window: SeqWindow, ref: ReferenceWindow, probe: Iterable<number>): void {
  expect(windowSize(window)).toBe(ref.map.size);
  for (const seq of probe) expect(windowGet(window, seq)).toBe(ref.map.get(seq));
  const seqs = window.flatMap((run) => run.seqs);
  expect(seqs).toEqual([...ref.map.keys()].sort((a, b) => a - b));
  for (const run of window) {
    expect(run.seqs.length).toBeGreaterThan(0);
    expect(run.values.length).toBe(run.seqs.length);
  }
}

describe('sequence window', () => {
  it('keeps exactly the entries the old record kept, for any order of writes and overwrites', () => {
    for (const [seed, limit, span] of [
      [1, 5, 20],
      [2, 64, 300],
      [3, 200, 1_000],
      [4, 4_096, 6_000],
    ] as const) {
      const rand = prng(seed);
      const ref = new ReferenceWindow(limit);
      let window: SeqWindow = [];
      let base = 1_000_000;
      for (let i = 0; i < 3 * span; i++) {
        // Mostly growing sequences (deliveries), some late or repeated ones (quoted receipts).
        const r = rand();
        const seq = r < 0.7 ? base++ : base - 1 - Math.floor(rand() * span);
        const value = `v${seq}:${i}`;
        ref.set(seq, value);
        window = deepFreeze(windowSet(window, seq, value, limit));
      }
      const probe = Array.from({ length: span + 20 }, (_, k) => base - span - 10 + k);
      expectSameAs(window, ref, probe);
    }
  });

  it('never modifies the window it is given, and shares the runs it did not change', () => {
    let window: SeqWindow = [];
    for (let seq = 1_000_001; seq <= 1_004_096; seq++) window = windowSet(window, seq, `c${seq}`, 4_096);
    const before = JSON.stringify(window);
    deepFreeze(window);
    const next = windowSet(window, 1_004_097, 'new', 4_096);
    const late = windowSet(window, 1_002_000, 'other', 4_096);
    expect(JSON.stringify(window)).toBe(before);
    expect(windowGet(window, 1_004_097)).toBeUndefined();
    expect(windowGet(window, 1_000_001)).toBe('c1000001');
    expect(windowGet(next, 1_004_097)).toBe('new');
    expect(windowGet(next, 1_000_001)).toBeUndefined();
    expect(windowGet(late, 1_002_000)).toBe('other');
    expect(windowGet(window, 1_002_000)).toBe('c1002000');
    // Only the pruned run, the written run and the list of runs are new.
    const shared = next.filter((run) => window.includes(run)).length;
    expect(shared).toBeGreaterThanOrEqual(next.length - 2);
  });

  it('drops a sequence below a full window at once and keeps what it had', () => {
    let window: SeqWindow = [];
    for (let seq = 10; seq < 14; seq++) window = windowSet(window, seq, `c${seq}`, 4);
    const after = windowSet(window, 3, 'old', 4);
    expect(windowGet(after, 3)).toBeUndefined();
    expect(after.flatMap((run) => run.seqs)).toEqual([10, 11, 12, 13]);
  });
});
