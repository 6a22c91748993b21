import { fakeGroups, openGroups, type GroupSpec } from './channels.js';
import { LoadFleet, type LoadResult } from './load-fleet.js';
import type { RunSpec } from './load-generator.js';
import { pipelineBetween, scrapePipeline, type PipelineTrace } from './pipeline-trace.js';
import { UsageWindow, type SampledGroup, type UsageSummary } from './proc-sampler.js';
import { progress } from './progress.js';
import { startCeilingProcess, startRelayProcess, type BenchDatabase, type ServiceProcess } from './relay-under-test.js';

/**
 * Mode 1: the relay against the ceiling in the same run. Two workloads (two-member groups, and
 * eight-member groups fanning out to seven), each in a closed loop, then the two-member one in
 * an open loop at a sweep of fixed rates. Measurements alternate ceiling, relay, ceiling, … so
 * that both see the same background load of the shared machine.
 */

/** Options of mode 1. */
export interface ThroughputOptions {
  readonly warmupMs: number;
  readonly durationMs: number;
  /** Unacknowledged sends per sender in the closed loop. */
  readonly window: number;
  readonly pairGroups: number;
  readonly fanoutGroups: number;
  readonly fanoutSize: number;
  /** Open-loop rates (msgs/s offered, all generators together). */
  readonly rates: number[];
  readonly procs: number;
  /** Write a CPU profile of the relay here. */
  readonly cpuProfDir?: string;
  readonly relayEnv?: Record<string, string>;
}

/** One measured run. */
export interface RunRecord {
  readonly system: 'ceiling' | 'relay';
  readonly workload: string;
  readonly mode: 'closed' | 'open';
  /** Open loop: offered msgs/s. */
  readonly offered?: number;
  /** Open loop: refused sends were retried (mode overload). */
  readonly retry?: boolean;
  readonly result: LoadResult;
  readonly usage: Record<string, UsageSummary>;
  /** The relay's commit pipeline over the run. */
  readonly pipeline?: PipelineTrace;
}

/** Mode 1's output. */
export interface ThroughputReport {
  readonly runs: RunRecord[];
  readonly setupSeconds: number;
}

/** A system under test and the processes whose CPU is read with it. */
export interface System {
  readonly name: 'ceiling' | 'relay';
  readonly service: ServiceProcess;
  readonly sampled: SampledGroup[];
}

/** Runs one measured run of `fleet` against `system`. */
export async function measure(system: System, fleet: LoadFleet, workload: string, spec: RunSpec): Promise<RunRecord> {
  const usage = new UsageWindow([...system.sampled, ...fleet.pids.map((pid, i) => ({ name: `generator${i}`, pid, tree: false }))]);
  const before = system.name === 'relay' ? await scrapePipeline(system.service.url) : undefined;
  const result = await fleet.run(spec);
  const used = usage.stop();
  const pipeline = before === undefined ? undefined : pipelineBetween(before, await scrapePipeline(system.service.url));
  const generators = Object.entries(used).filter(([k]) => k.startsWith('generator'));
  const summary: Record<string, UsageSummary> = Object.fromEntries(Object.entries(used).filter(([k]) => !k.startsWith('generator')));
  summary.generators = {
    cpuCores: Math.round(generators.reduce((a, [, u]) => a + u.cpuCores, 0) * 100) / 100,
    rssMiB: Math.round(generators.reduce((a, [, u]) => a + u.rssMiB, 0) * 10) / 10,
  };
  const label = spec.mode === 'open' ? `${spec.retry === true ? 'retrying' : 'open'} ${Math.round(spec.rate)}/s` : `closed w=${spec.window}`;
  progress(
    `  ${system.name.padEnd(7)} ${workload.padEnd(8)} ${label.padEnd(14)} acked ${result.ackedPerSec}/s delivered ${result.deliveredPerSec}/s ` +
      `ack p99 ${result.ack.p99} ms, delivery p99 ${result.delivery.p99} ms${result.errors > 0 ? `, ${result.errors} errors (${result.firstError ?? `${result.refused} overloaded`})` : ''}` +
      (pipeline ? `; batches ${pipeline.batches} × ${pipeline.meanBatch}, queue ${pipeline.queueMs} ms, commit ${pipeline.commitMs} ms, handout ${pipeline.handoutMs} ms` : ''),
  );
  return {
    system: system.name,
    workload,
    mode: spec.mode,
    ...(spec.mode === 'open' ? { offered: Math.round(spec.rate), ...(spec.retry === true ? { retry: true } : {}) } : {}),
    result,
    usage: summary,
    ...(pipeline ? { pipeline } : {}),
  };
}

/** Runs mode 1. */
export async function runThroughput(db: BenchDatabase, options: ThroughputOptions): Promise<ThroughputReport> {
  const t0 = performance.now();
  let relay: ServiceProcess | undefined;
  let ceiling: ServiceProcess | undefined;
  const fleets: LoadFleet[] = [];
  try {
    progress('starting the relay and the ceiling forwarder');
    [ceiling, relay] = await Promise.all([startCeilingProcess(), startRelayProcess({ databaseUrl: db.url, ...(options.cpuProfDir ? { cpuProfDir: options.cpuProfDir } : {}), ...(options.relayEnv ? { env: options.relayEnv } : {}) })]);
    progress(`opening ${options.pairGroups} two-party and ${options.fanoutGroups} ${options.fanoutSize}-party channels through the governance flow`);
    const pairs: GroupSpec[] = await openGroups(relay.url, options.pairGroups, 2);
    const fans: GroupSpec[] = options.fanoutGroups > 0 ? await openGroups(relay.url, options.fanoutGroups, options.fanoutSize) : [];
    const systems: System[] = [
      { name: 'ceiling', service: ceiling, sampled: [{ name: 'ceiling', pid: ceiling.pid, tree: false }] },
      {
        name: 'relay',
        service: relay,
        sampled: [
          { name: 'relay', pid: relay.pid, tree: false },
          { name: 'postgres', pid: db.pid, tree: true },
        ],
      },
    ];
    const connect = async (groups: GroupSpec[]): Promise<[LoadFleet, LoadFleet]> => {
      const c = await LoadFleet.start({ procs: options.procs, urls: [ceiling!.url], auth: false, groups: fakeGroups(groups.length, groups[0]!.members.length), sendersPerGroup: Number.MAX_SAFE_INTEGER });
      fleets.push(c);
      const r = await LoadFleet.start({ procs: options.procs, urls: [relay!.url], auth: true, groups, sendersPerGroup: Number.MAX_SAFE_INTEGER });
      fleets.push(r);
      return [c, r];
    };
    const setupSeconds = (performance.now() - t0) / 1000;
    const runs: RunRecord[] = [];
    const both = async (pair: [LoadFleet, LoadFleet], workload: string, spec: RunSpec): Promise<void> => {
      runs.push(await measure(systems[0]!, pair[0], workload, spec));
      runs.push(await measure(systems[1]!, pair[1], workload, spec));
    };
    const { warmupMs, durationMs } = options;

    progress(`two-party groups: closed loop, then open loop at ${options.rates.join(', ')} msgs/s`);
    const pairFleets = await connect(pairs);
    await both(pairFleets, '2-member', { mode: 'closed', window: options.window, warmupMs, durationMs });
    for (const rate of options.rates) await both(pairFleets, '2-member', { mode: 'open', rate, warmupMs, durationMs });
    await Promise.all(pairFleets.map((f) => f.close()));

    if (fans.length > 0) {
      progress(`${options.fanoutSize}-party groups: closed loop, every member sending to the ${options.fanoutSize - 1} others`);
      const fanFleets = await connect(fans);
      await both(fanFleets, `${options.fanoutSize}-member`, { mode: 'closed', window: 1, warmupMs, durationMs });
      await Promise.all(fanFleets.map((f) => f.close()));
    }
    return { runs, setupSeconds: Math.round(setupSeconds * 10) / 10 };
  } finally {
    await Promise.all(fleets.map((f) => f.close()));
    await Promise.all([relay?.stop(), ceiling?.stop()]);
  }
}
