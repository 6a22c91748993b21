/**
 * A bounded map from relay sequence to a string (a receipt chain value, a delivered
 * commitment) that keeps only the highest sequences, as plain JSON.
 *
 * The map is a list of ascending, non-overlapping runs of at most {@link MAX_RUN} entries. An
 * update copies the run it changes, the run it prunes and the list of runs — a few hundred slots
 * for a full window of 4,096 — and shares every other run with the window it was given.
 * Nothing is ever modified in place, so the old window stays valid (a failed open leaves the
 * previous state usable) and sharing is safe. A record keyed by sequence numbers would have to be
 * copied whole on every update, and at realistic sequences (around 10⁶) V8 keeps such a record in
 * dictionary mode, where that copy costs milliseconds.
 *
 * Only the types are part of the package's surface (as the shape of `GroupState`'s windows).
 */

/** One run of ascending sequences and their values, index for index. */
export interface SeqRun {
  readonly seqs: readonly number[];
  readonly values: readonly string[];
}

/** A bounded sequence map: ascending, non-overlapping, non-empty runs. Never modified in place. */
export type SeqWindow = readonly SeqRun[];

/** Most entries in one run: an update copies about two runs plus one slot per run. */
const MAX_RUN = 64;

/** Index of the first element of ascending `xs` that is ≥ `x` (`xs.length` when none is). */
function lowerBound(xs: readonly number[], x: number): number {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (xs[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Index of the first run whose last sequence is ≥ `seq` (`window.length` when none is). */
function runFor(window: SeqWindow, seq: number): number {
  let lo = 0;
  let hi = window.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const run = window[mid]!;
    if (run.seqs[run.seqs.length - 1]! < seq) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The value remembered for `seq`, if any. */
export function windowGet(window: SeqWindow, seq: number): string | undefined {
  const run = window[runFor(window, seq)];
  if (run === undefined) return undefined;
  const i = lowerBound(run.seqs, seq);
  return run.seqs[i] === seq ? run.values[i] : undefined;
}

/** How many sequences the window holds. */
export function windowSize(window: SeqWindow): number {
  let n = 0;
  for (const run of window) n += run.seqs.length;
  return n;
}

/** The runs `run` becomes once `seq` → `value` is written into it. */
function writeRun(run: SeqRun, seq: number, value: string): SeqRun[] {
  const i = lowerBound(run.seqs, seq);
  if (run.seqs[i] === seq) {
    const values = run.values.slice();
    values[i] = value;
    return [{ seqs: run.seqs, values }];
  }
  // Appending past a full run (the usual case: sequences grow) starts the next run.
  if (i === run.seqs.length && run.seqs.length >= MAX_RUN) return [run, { seqs: [seq], values: [value] }];
  const seqs = [...run.seqs.slice(0, i), seq, ...run.seqs.slice(i)];
  const values = [...run.values.slice(0, i), value, ...run.values.slice(i)];
  if (seqs.length <= MAX_RUN) return [{ seqs, values }];
  const half = seqs.length >>> 1;
  return [
    { seqs: seqs.slice(0, half), values: values.slice(0, half) },
    { seqs: seqs.slice(half), values: values.slice(half) },
  ];
}

/** Drops the lowest sequences until at most `limit` remain. */
function prune(runs: SeqRun[], limit: number): SeqRun[] {
  let excess = windowSize(runs) - limit;
  let first = 0;
  while (excess > 0 && runs[first]!.seqs.length <= excess) excess -= runs[first++]!.seqs.length;
  const kept = first === 0 ? runs : runs.slice(first);
  if (excess > 0) {
    const head = kept[0]!;
    kept[0] = { seqs: head.seqs.slice(excess), values: head.values.slice(excess) };
  }
  return kept;
}

/**
 * Returns a window holding `seq` → `value` (replacing any value for `seq`) and only the
 * `limit` highest sequences: a sequence below a full window is dropped again at once. `window` is
 * not modified; the result shares the runs it did not change.
 */
export function windowSet(window: SeqWindow, seq: number, value: string, limit: number): SeqWindow {
  if (window.length === 0) return limit > 0 ? [{ seqs: [seq], values: [value] }] : [];
  const at = Math.min(runFor(window, seq), window.length - 1);
  const runs = [...window.slice(0, at), ...writeRun(window[at]!, seq, value), ...window.slice(at + 1)];
  return prune(runs, limit);
}
