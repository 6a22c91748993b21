import { readFileSync } from 'node:fs';
import path from 'node:path';

/**
 * Reads a V8 `.cpuprofile` (written by `node --cpu-prof`) and lists the hottest functions by
 * self time and by total (inclusive) time, so `npm run bench -- --profile` can say where the
 * relay spends its CPU without opening a profiler.
 */

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

/** One line of a hotspot table. */
export interface Hotspot {
  readonly fn: string;
  /** Percent of all samples spent in the function itself. */
  readonly selfPct: number;
  /** Percent of all samples with the function on the stack. */
  readonly totalPct: number;
}

function label(n: ProfileNode, root: string): string {
  const { functionName, url, lineNumber } = n.callFrame;
  const file = url === '' ? '' : url.startsWith('file://') ? path.relative(root, new URL(url).pathname) : url;
  return `${functionName || '(anonymous)'}${file ? ` ${file.replace(/^node_modules\//, '')}:${lineNumber + 1}` : ''}`;
}

/** The top `limit` functions of a profile by self time, with their inclusive share. */
export function hotspots(file: string, root: string, limit = 25): { bySelf: Hotspot[]; byTotal: Hotspot[]; idlePct: number } {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const total = profile.nodes.reduce((a, n) => a + (n.hitCount ?? 0), 0) || 1;
  const self = new Map<string, number>();
  const incl = new Map<string, number>();
  let idle = 0;
  for (const n of profile.nodes) {
    const hits = n.hitCount ?? 0;
    if (hits === 0) continue;
    const name = label(n, root);
    if (n.callFrame.functionName === '(idle)') idle += hits;
    self.set(name, (self.get(name) ?? 0) + hits);
    const seen = new Set<string>();
    for (let id: number | undefined = n.id; id !== undefined; id = parent.get(id)) {
      const l = label(byId.get(id)!, root);
      if (seen.has(l)) continue;
      seen.add(l);
      incl.set(l, (incl.get(l) ?? 0) + hits);
    }
  }
  const pct = (h: number): number => Math.round((h / total) * 1000) / 10;
  const row = (fn: string): Hotspot => ({ fn, selfPct: pct(self.get(fn) ?? 0), totalPct: pct(incl.get(fn) ?? 0) });
  const bySelf = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, limit).map(([fn]) => row(fn));
  const byTotal = [...incl.entries()]
    .filter(([fn]) => !fn.startsWith('(root)') && !fn.startsWith('(program)'))
    .sort((a, b) => b[1] - a[1])
    .slice(0, limit)
    .map(([fn]) => row(fn));
  return { bySelf, byTotal, idlePct: pct(idle) };
}
