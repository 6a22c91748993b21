import { readdirSync, readFileSync } from 'node:fs';

/**
 * CPU and memory of processes under test, read from /proc (Linux): `utime + stime` from
 * `/proc/<pid>/stat` and `VmRSS` from `/proc/<pid>/status`. A sampled group is a root pid and,
 * optionally, all its descendants (the embedded PostgreSQL's postmaster and backends).
 */

/** Clock ticks per second for /proc stat times; 100 on every Linux the bench runs on. */
const TICKS = 100;

interface ProcStat {
  readonly ppid: number;
  readonly ticks: number;
}

function readStat(pid: number): ProcStat | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name is in parentheses and may hold spaces: split after the last ')'.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]) };
  } catch {
    return undefined;
  }
}

/** Resident set size of one process in bytes (0 when it is gone). */
export function rssBytes(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** `pid` and every process descended from it. */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    const p = Number(name);
    if (!Number.isInteger(p)) continue;
    const st = readStat(p);
    if (st === undefined) continue;
    let list = children.get(st.ppid);
    if (list === undefined) children.set(st.ppid, (list = []));
    list.push(p);
  }
  const out: number[] = [];
  const walk = (p: number): void => {
    out.push(p);
    for (const c of children.get(p) ?? []) walk(c);
  };
  walk(pid);
  return out;
}

/** Total CPU seconds used so far by the given processes. */
export function cpuSeconds(pids: readonly number[]): number {
  let ticks = 0;
  for (const p of pids) ticks += readStat(p)?.ticks ?? 0;
  return ticks / TICKS;
}

/** What a sampled group used over a measurement window. */
export interface UsageSummary {
  /** Average CPU, in cores (1.0 = one core busy the whole window). */
  readonly cpuCores: number;
  /** Peak resident memory in MiB (of the root process only for node processes, of all for trees). */
  readonly rssMiB: number;
}

/** One group of processes to sample: a root pid and whether to include its descendants. */
export interface SampledGroup {
  readonly name: string;
  readonly pid: number;
  readonly tree: boolean;
}

/**
 * Samples groups over a window: CPU from the difference of cumulative times, RSS as the peak of
 * periodic samples. Descendants are re-listed at start (PostgreSQL backends come and go rarely).
 */
export class UsageWindow {
  readonly #groups: { g: SampledGroup; pids: number[]; cpu0: Map<number, number>; peak: number }[];
  readonly #t0 = performance.now();
  readonly #timer: NodeJS.Timeout;

  constructor(groups: readonly SampledGroup[]) {
    this.#groups = groups.map((g) => {
      const pids = g.tree ? processTree(g.pid) : [g.pid];
      return { g, pids, cpu0: new Map(pids.map((p) => [p, cpuSeconds([p])])), peak: 0 };
    });
    this.#sample();
    this.#timer = setInterval(() => this.#sample(), 250);
    this.#timer.unref();
  }

  #sample(): void {
    for (const s of this.#groups) {
      let rss = 0;
      for (const p of s.pids) rss += rssBytes(p);
      s.peak = Math.max(s.peak, rss);
    }
  }

  /** Ends the window. */
  stop(): Record<string, UsageSummary> {
    clearInterval(this.#timer);
    this.#sample();
    const seconds = (performance.now() - this.#t0) / 1000;
    const out: Record<string, UsageSummary> = {};
    for (const s of this.#groups) {
      // Per process, so a backend that exited during the window cannot make the sum negative;
      // one that started during it counts whole.
      const pids = s.g.tree ? processTree(s.g.pid) : [s.g.pid];
      let used = 0;
      for (const p of pids) used += Math.max(0, cpuSeconds([p]) - (s.cpu0.get(p) ?? 0));
      out[s.g.name] = { cpuCores: Math.round((used / seconds) * 100) / 100, rssMiB: Math.round((s.peak / 1048576) * 10) / 10 };
    }
    return out;
  }
}
