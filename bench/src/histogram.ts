/**
 * A mergeable latency histogram in microseconds: log-linear buckets (32 per power of two, so a
 * reported percentile is within ~3 % of the true value), small enough to send from a load
 * generator child to the parent after every run, exact in its count, min, max and mean.
 */
const SUB_BITS = 5;
const SUB = 1 << SUB_BITS;
const MAX_POW = 40; // 2^40 µs ≈ 12 days

/** Counts as a plain object (what crosses the IPC channel). */
export interface HistogramData {
  readonly counts: number[];
  readonly count: number;
  readonly sum: number;
  readonly min: number;
  readonly max: number;
}

/** Latency percentiles in milliseconds. */
export interface LatencySummary {
  readonly count: number;
  readonly mean: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
}

function indexOf(us: number): number {
  const v = Math.max(0, Math.floor(us));
  if (v < SUB) return v;
  const pow = Math.min(MAX_POW, Math.floor(Math.log2(v)));
  const sub = Math.floor(v / 2 ** (pow - SUB_BITS)) - SUB; // 0 … SUB-1 (clamped against rounding)
  return SUB + (pow - SUB_BITS) * SUB + Math.max(0, Math.min(SUB - 1, sub));
}

function valueOf(index: number): number {
  if (index < SUB) return index;
  const k = index - SUB;
  const pow = Math.floor(k / SUB) + SUB_BITS;
  const sub = k % SUB;
  // Middle of the bucket.
  return (SUB + sub + 0.5) * 2 ** (pow - SUB_BITS);
}

/** A histogram of microsecond values. */
export class Histogram {
  counts: number[] = new Array<number>(SUB + (MAX_POW - SUB_BITS + 1) * SUB).fill(0);
  count = 0;
  sum = 0;
  min = Number.POSITIVE_INFINITY;
  max = 0;

  /** Records one value in microseconds. */
  record(us: number): void {
    const i = indexOf(us);
    this.counts[i] = (this.counts[i] ?? 0) + 1;
    this.count++;
    this.sum += us;
    if (us < this.min) this.min = us;
    if (us > this.max) this.max = us;
  }

  /** Adds another histogram's counts. */
  merge(other: HistogramData): this {
    other.counts.forEach((c, i) => {
      if (c > 0) this.counts[i] = (this.counts[i] ?? 0) + c;
    });
    this.count += other.count;
    this.sum += other.sum;
    if (other.count > 0) {
      this.min = Math.min(this.min, other.min);
      this.max = Math.max(this.max, other.max);
    }
    return this;
  }

  /** The value (µs) at or below which `q` of the recorded values lie. */
  quantile(q: number): number {
    if (this.count === 0) return Number.NaN;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i] ?? 0;
      if (seen >= rank) return Math.min(this.max, Math.max(this.min, valueOf(i)));
    }
    return this.max;
  }

  /** Percentiles in milliseconds. */
  summary(): LatencySummary {
    const ms = (us: number): number => Math.round(us) / 1000;
    return {
      count: this.count,
      mean: this.count === 0 ? Number.NaN : ms(this.sum / this.count),
      p50: ms(this.quantile(0.5)),
      p90: ms(this.quantile(0.9)),
      p99: ms(this.quantile(0.99)),
      p999: ms(this.quantile(0.999)),
      max: this.count === 0 ? Number.NaN : ms(this.max),
    };
  }

  /** Plain data for IPC (only non-empty buckets would be smaller; the array is ~1.2k numbers). */
  toJSON(): HistogramData {
    return { counts: this.counts, count: this.count, sum: this.sum, min: this.min, max: this.max };
  }

  /** Empties the histogram. */
  reset(): void {
    this.counts.fill(0);
    this.count = 0;
    this.sum = 0;
    this.min = Number.POSITIVE_INFINITY;
    this.max = 0;
  }
}
