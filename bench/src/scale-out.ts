import { openGroups } from './channels.js';
import { LoadFleet, type LoadResult } from './load-fleet.js';
import { UsageWindow, type UsageSummary } from './proc-sampler.js';
import { progress } from './progress.js';
import { startRelayProcess, type BenchDatabase, type ServiceProcess } from './relay-under-test.js';

/**
 * Mode 4: two relay processes on one PostgreSQL. Three closed-loop runs on fresh two-party
 * channels: one node carrying everything; two nodes with each channel wholly on one of them
 * (the scale-out case); two nodes with the two parties of every channel on different nodes
 * (every message crosses nodes through NOTIFY and a database read).
 */

/** One configuration's figures. */
export interface ScaleOutRun {
  readonly name: 'one-node' | 'two-nodes-split' | 'two-nodes-cross';
  readonly result: LoadResult;
  readonly usage: Record<string, UsageSummary>;
}

/** Mode 4's output. */
export interface ScaleOutReport {
  readonly runs: ScaleOutRun[];
  /** two-nodes-split ÷ one-node, delivered msgs/s. */
  readonly ratio: number;
  /** two-nodes-cross ÷ one-node. */
  readonly crossRatio: number;
}

/** Options of mode 4. */
export interface ScaleOutOptions {
  readonly groups: number;
  readonly window: number;
  readonly warmupMs: number;
  readonly durationMs: number;
  readonly procs: number;
}

/** Runs mode 4 against two fresh relay processes on `db`. */
export async function runScaleOut(db: BenchDatabase, options: ScaleOutOptions): Promise<ScaleOutReport> {
  let a: ServiceProcess | undefined;
  let b: ServiceProcess | undefined;
  try {
    progress('scale-out: starting two relay processes on one PostgreSQL');
    [a, b] = await Promise.all([startRelayProcess({ databaseUrl: db.url }), startRelayProcess({ databaseUrl: db.url })]);
    const runs: ScaleOutRun[] = [];
    const configs = [
      { name: 'one-node', urls: [a.url], spread: 'members' },
      { name: 'two-nodes-split', urls: [a.url, b.url], spread: 'groups' },
      { name: 'two-nodes-cross', urls: [a.url, b.url], spread: 'members' },
    ] as const;
    for (const c of configs) {
      const groups = await openGroups(a.url, options.groups, 2);
      const fleet = await LoadFleet.start({ procs: options.procs, urls: [...c.urls], spread: c.spread, auth: true, groups, sendersPerGroup: 2 });
      try {
        const usage = new UsageWindow([
          { name: 'relayA', pid: a.pid, tree: false },
          { name: 'relayB', pid: b.pid, tree: false },
          { name: 'postgres', pid: db.pid, tree: true },
        ]);
        const result = await fleet.run({ mode: 'closed', window: options.window, warmupMs: options.warmupMs, durationMs: options.durationMs });
        runs.push({ name: c.name, result, usage: usage.stop() });
        progress(`  ${c.name.padEnd(16)} delivered ${result.deliveredPerSec}/s, delivery p99 ${result.delivery.p99} ms${result.errors > 0 ? `, ${result.errors} errors (${result.firstError})` : ''}`);
      } finally {
        await fleet.close();
      }
    }
    const rate = (n: ScaleOutRun['name']): number => runs.find((r) => r.name === n)?.result.deliveredPerSec ?? Number.NaN;
    return {
      runs,
      ratio: Math.round((rate('two-nodes-split') / rate('one-node')) * 100) / 100,
      crossRatio: Math.round((rate('two-nodes-cross') / rate('one-node')) * 100) / 100,
    };
  } finally {
    await Promise.all([a?.stop(), b?.stop()]);
  }
}
