import { fakeGroups, openGroups } from './channels.js';
import { LoadFleet } from './load-fleet.js';
import { progress } from './progress.js';
import { startCeilingProcess, startRelayProcess, type BenchDatabase, type ServiceProcess } from './relay-under-test.js';
import { measure, type RunRecord, type System } from './throughput.js';

/**
 * Mode overload: goodput past capacity. The closed-loop capacity of the relay (and of the
 * ceiling) is measured first, then the two-member workload is offered at multiples of the
 * relay's capacity measured in this run: by open-loop clients (a refused send is lost) and by
 * retrying clients (a refused send comes back after the SDK's retry delay, as SDK clients do).
 * Goodput ÷ capacity is what the relay acknowledges past its capacity; it should stay near 1,
 * with the excess refused. With `--noise`, a CPU-burning neighbour spins on one core throughout.
 */

/** Options of mode overload. */
export interface OverloadOptions {
  readonly warmupMs: number;
  readonly durationMs: number;
  readonly window: number;
  readonly pairGroups: number;
  /** Offered load as multiples of the relay's closed-loop capacity. */
  readonly multiples: number[];
  readonly procs: number;
  /** The `--noise` neighbour's pid, sampled with each system. */
  readonly noisePid?: number;
  /** Write a CPU profile of the relay here. */
  readonly cpuProfDir?: string;
}

/** Mode overload's output. */
export interface OverloadReport {
  readonly noise: boolean;
  /** Closed-loop acked msgs/s measured in this run. */
  readonly capacity: { readonly relay: number; readonly ceiling: number };
  readonly runs: RunRecord[];
  /** Offered multiple → goodput ÷ capacity, per client kind. */
  readonly goodput: { readonly multiple: number; readonly clients: 'open' | 'retrying'; readonly ratio: number; readonly ackP99: number }[];
}

/** Runs mode overload. */
export async function runOverload(db: BenchDatabase, options: OverloadOptions): Promise<OverloadReport> {
  let relay: ServiceProcess | undefined;
  let ceiling: ServiceProcess | undefined;
  const fleets: LoadFleet[] = [];
  try {
    progress('overload: starting the relay and the ceiling forwarder');
    [ceiling, relay] = await Promise.all([startCeilingProcess(), startRelayProcess({ databaseUrl: db.url, ...(options.cpuProfDir ? { cpuProfDir: options.cpuProfDir } : {}) })]);
    const groups = await openGroups(relay.url, options.pairGroups, 2);
    const c = await LoadFleet.start({ procs: options.procs, urls: [ceiling.url], auth: false, groups: fakeGroups(groups.length, 2), sendersPerGroup: Number.MAX_SAFE_INTEGER });
    fleets.push(c);
    const r = await LoadFleet.start({ procs: options.procs, urls: [relay.url], auth: true, groups, sendersPerGroup: Number.MAX_SAFE_INTEGER });
    fleets.push(r);
    const sampledNoise = options.noisePid !== undefined ? [{ name: 'noise', pid: options.noisePid, tree: false }] : [];
    const ceilingSys: System = { name: 'ceiling', service: ceiling, sampled: [{ name: 'ceiling', pid: ceiling.pid, tree: false }, ...sampledNoise] };
    const relaySys: System = {
      name: 'relay',
      service: relay,
      sampled: [{ name: 'relay', pid: relay.pid, tree: false }, { name: 'postgres', pid: db.pid, tree: true }, ...sampledNoise],
    };
    const { warmupMs, durationMs } = options;
    const runs: RunRecord[] = [];
    progress('overload: closed-loop capacity');
    runs.push(await measure(ceilingSys, c, '2-member', { mode: 'closed', window: options.window, warmupMs, durationMs }));
    const relayClosed = await measure(relaySys, r, '2-member', { mode: 'closed', window: options.window, warmupMs, durationMs });
    runs.push(relayClosed);
    const capacity = relayClosed.result.ackedPerSec;
    const goodput: OverloadReport['goodput'] = [];
    for (const multiple of options.multiples) {
      const rate = capacity * multiple;
      progress(`overload: ${multiple}× the relay's capacity = ${Math.round(rate)} msgs/s offered`);
      runs.push(await measure(ceilingSys, c, '2-member', { mode: 'open', rate, warmupMs, durationMs }));
      for (const retry of [false, true]) {
        const run = await measure(relaySys, r, '2-member', { mode: 'open', rate, retry, warmupMs, durationMs });
        runs.push(run);
        goodput.push({ multiple, clients: retry ? 'retrying' : 'open', ratio: Math.round((run.result.ackedPerSec / capacity) * 100) / 100, ackP99: run.result.ack.p99 });
      }
    }
    return { noise: options.noisePid !== undefined, capacity: { relay: capacity, ceiling: runs[0]!.result.ackedPerSec }, runs, goodput };
  } finally {
    await Promise.all(fleets.map((f) => f.close()));
    await Promise.all([relay?.stop(), ceiling?.stop()]);
  }
}
