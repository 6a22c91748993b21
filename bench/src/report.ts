import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ConnectionsReport } from './connections.js';
import type { Hotspot } from './cpu-profile.js';
import { latencyChart } from './latency-chart.js';
import type { OverloadReport } from './overload.js';
import type { ScaleOutReport } from './scale-out.js';
import type { SdkReport } from './sdk-bench.js';
import type { RunRecord, ThroughputReport } from './throughput.js';

/**
 * The results: targets judged from ratios measured in the same run, a table for people, one
 * JSON line for machines (bench/results/latest.json) and the latency chart (latency.svg).
 */

/** Published reference figures (2 cores, 1 KiB, 100 two-member groups), for context only. */
export const REFERENCE = {
  bareForwarderMsgsPerSec: 120_000,
  durableForwarderMsgsPerSec: 45_000,
  mosquittoQos0MsgsPerSec: 35_000,
  mosquittoQos1MsgsPerSec: 18_000,
} as const;

/** One target and whether this run met it (null: not measured in this run). */
export interface Target {
  readonly id: string;
  readonly target: string;
  readonly measured: string;
  readonly met: boolean | null;
}

/** Everything a bench run produced. */
export interface BenchReport {
  readonly schema: 'backchannel-bench/1';
  readonly startedAt: string;
  readonly seconds: number;
  readonly argv: string[];
  readonly machine: { cpus: number; model: string; loadavg: number[]; node: string; fdLimit: number | undefined };
  readonly throughput?: ThroughputReport;
  readonly overload?: OverloadReport;
  readonly sdk?: SdkReport;
  readonly connections?: ConnectionsReport;
  readonly scaleOut?: ScaleOutReport;
  readonly hotspots?: Hotspot[];
  readonly ratios: Record<string, number>;
  readonly targets: Target[];
}

const r2 = (n: number): number => Math.round(n * 100) / 100;

function find(runs: readonly RunRecord[], system: RunRecord['system'], workload: string, mode: RunRecord['mode'], offered?: number): RunRecord | undefined {
  return runs.find((r) => r.system === system && r.workload === workload && r.mode === mode && (offered === undefined || r.offered === offered));
}

/** Ratios relay ÷ ceiling and the targets of issue #7. */
export function judge(parts: Pick<BenchReport, 'throughput' | 'overload' | 'sdk' | 'connections' | 'scaleOut'>): { ratios: Record<string, number>; targets: Target[] } {
  const ratios: Record<string, number> = {};
  const targets: Target[] = [];
  const runs = parts.throughput?.runs ?? [];
  const pairC = find(runs, 'ceiling', '2-member', 'closed');
  const pairR = find(runs, 'relay', '2-member', 'closed');
  if (pairC && pairR) {
    ratios.durable2Member = r2(pairR.result.deliveredPerSec / pairC.result.deliveredPerSec);
    targets.push({
      id: 'durable-2-member',
      target: '≥ 0.30× bare forwarder msgs/s, and > 18k msgs/s (Mosquitto QoS 1)',
      measured: `${ratios.durable2Member}× (${pairR.result.deliveredPerSec} vs ${pairC.result.deliveredPerSec} msgs/s)`,
      met: ratios.durable2Member >= 0.3 && pairR.result.deliveredPerSec > REFERENCE.mosquittoQos1MsgsPerSec,
    });
  }
  const fanWorkload = runs.find((r) => r.workload !== '2-member')?.workload;
  const fanC = fanWorkload ? find(runs, 'ceiling', fanWorkload, 'closed') : undefined;
  const fanR = fanWorkload ? find(runs, 'relay', fanWorkload, 'closed') : undefined;
  if (fanC && fanR) {
    ratios.fanOut = r2(fanR.result.deliveredPerSec / fanC.result.deliveredPerSec);
    targets.push({
      id: 'fan-out',
      target: `${fanWorkload} fan-out delivered msgs/s ≥ 0.30× bare forwarder`,
      measured: `${ratios.fanOut}× (${fanR.result.deliveredPerSec} vs ${fanC.result.deliveredPerSec} delivered/s)`,
      met: ratios.fanOut >= 0.3,
    });
  }
  const open10k = find(runs, 'relay', '2-member', 'open', 10_000);
  if (open10k) {
    const res = open10k.result;
    const kept = res.ackedPerSec >= 0.95 * 10_000;
    targets.push({
      id: 'open-loop-10k',
      target: 'open loop 10k msgs/s: ack p99 ≤ 10 ms, delivery p99 ≤ 15 ms',
      measured: `ack p99 ${res.ack.p99} ms, delivery p99 ${res.delivery.p99} ms, ${res.ackedPerSec} acked/s${kept ? '' : ' (did not keep up)'}`,
      met: kept && res.ack.p99 <= 10 && res.delivery.p99 <= 15,
    });
    const ceil10k = find(runs, 'ceiling', '2-member', 'open', 10_000);
    if (ceil10k) ratios.openLoop10kAckP99VsCeiling = r2(res.ack.p99 / ceil10k.result.ack.p99);
  }
  if (parts.overload && parts.overload.goodput.length > 0) {
    const o = parts.overload;
    const worst = Math.min(...o.goodput.map((g) => g.ratio));
    ratios.overloadGoodput = worst;
    targets.push({
      id: 'overload-goodput',
      target: `goodput ÷ closed-loop capacity ≥ 0.9 at ${[...new Set(o.goodput.map((g) => g.multiple))].join('× and ')}× offered${o.noise ? ' (with --noise)' : ''}`,
      measured: o.goodput.map((g) => `${g.multiple}× ${g.clients} ${g.ratio}`).join(', ') + ` (capacity ${o.capacity.relay} msgs/s = ${r2(o.capacity.relay / o.capacity.ceiling)}× ceiling)`,
      met: worst >= 0.9,
    });
  }
  if (parts.connections) {
    const c = parts.connections;
    targets.push({
      id: 'idle-connections',
      target: '≥ 20k idle connections on one node at ≤ 20 KiB each',
      measured: `${c.established} of ${c.requested} at ${c.kibPerConnection} KiB each (relay fd limit ${c.relayFdLimit})`,
      met: c.established >= 20_000 && c.kibPerConnection <= 20 ? true : c.kibPerConnection > 20 || c.failed > 0 ? false : null,
    });
  }
  if (parts.scaleOut) {
    ratios.scaleOut = parts.scaleOut.ratio;
    ratios.scaleOutCross = parts.scaleOut.crossRatio;
    targets.push({
      id: 'two-nodes',
      target: 'two nodes on one PostgreSQL ≥ 1.6× one node (where CPU allows)',
      measured: `${parts.scaleOut.ratio}× split, ${parts.scaleOut.crossRatio}× with every message crossing nodes`,
      met: parts.scaleOut.ratio >= 1.6,
    });
  }
  if (parts.sdk) {
    const seven = parts.sdk.rows.find((r) => r.recipients === 7);
    if (seven) {
      targets.push({
        id: 'sdk-fan-out',
        target: 'SDK ≥ 10k msgs/s encrypted and fanned out to 7 recipients (Node)',
        measured: `${seven.sealPerSec} msgs/s sealed to 7; ${seven.openPerSec} opens/s`,
        met: seven.sealPerSec >= 10_000,
      });
    }
  }
  return { ratios, targets };
}

function table(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => String(c)))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)));
  const line = (r: string[]): string => r.map((c, i) => (i < 3 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(cells[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

/** The human-readable summary. */
export function formatReport(report: BenchReport): string {
  const out: string[] = [];
  out.push(`Backchannel bench — ${report.startedAt}, ${report.machine.cpus} CPUs (${report.machine.model}), load ${report.machine.loadavg.join(' ')}, node ${report.machine.node}`);
  const runs = report.throughput?.runs ?? [];
  if (runs.length > 0) {
    out.push('', 'Relay vs ceiling (1 KiB bodies; ratio = relay ÷ ceiling, same workload, same run)');
    const rows = runs.map((r) => {
      const peer = r.system === 'relay' ? find(runs, 'ceiling', r.workload, r.mode, r.offered) : undefined;
      return [
        r.system,
        r.workload,
        r.mode === 'open' ? `open ${r.offered}/s` : 'closed',
        r.result.ackedPerSec,
        r.result.deliveredPerSec,
        peer ? r2(r.result.deliveredPerSec / peer.result.deliveredPerSec).toFixed(2) : '',
        r.result.ack.p50,
        r.result.ack.p99,
        r.result.delivery.p50,
        r.result.delivery.p99,
        (r.usage.relay ?? r.usage.ceiling)?.cpuCores ?? '',
        r.usage.postgres?.cpuCores ?? '',
        r.usage.generators?.cpuCores ?? '',
        r.result.errors + r.result.outOfOrder,
      ];
    });
    out.push(
      table(['system', 'workload', 'load', 'acked/s', 'deliv/s', 'ratio', 'ack p50', 'ack p99', 'dlv p50', 'dlv p99', 'cpu srv', 'cpu pg', 'cpu gen', 'errs'], rows),
    );
    out.push('(latencies in ms; cpu in cores averaged over the window: srv = relay or ceiling process, pg = PostgreSQL, gen = load generators)');
  }
  if (report.overload) {
    const o = report.overload;
    out.push('', `Overload (two-member groups; offered load as multiples of the relay's closed-loop capacity, ${o.capacity.relay} msgs/s in this run${o.noise ? '; a CPU-burning neighbour on one core' : ''})`);
    const rows = o.runs.map((r) => [
      r.system,
      r.mode === 'closed' ? 'closed' : r.retry === true ? 'retrying' : 'open',
      r.mode === 'closed' ? 'capacity' : `${r2((r.offered ?? 0) / o.capacity.relay)}× = ${r.offered}/s`,
      r.result.ackedPerSec,
      r2(r.result.ackedPerSec / o.capacity.relay).toFixed(2),
      r.result.ack.p50,
      r.result.ack.p99,
      Math.round(r.result.refused / r.result.seconds),
      r.pipeline ? `${r.pipeline.meanBatch}` : '',
      r.pipeline ? `${r.pipeline.queueMs}/${r.pipeline.commitMs}/${r.pipeline.handoutMs}` : '',
      (r.usage.relay ?? r.usage.ceiling)?.cpuCores ?? '',
      r.usage.postgres?.cpuCores ?? '',
      r.usage.generators?.cpuCores ?? '',
      r.usage.noise?.cpuCores ?? '',
    ]);
    out.push(table(['system', 'clients', 'offered', 'acked/s', 'goodput÷cap', 'ack p50', 'ack p99', 'refused/s', 'batch', 'queue/commit/handout', 'cpu srv', 'cpu pg', 'cpu gen', 'cpu noise'], rows));
    out.push('(goodput÷cap = acked/s ÷ the relay\'s closed-loop capacity; latencies in ms from when a send was due, retries included; batch = mean batch size, then mean ms per batch waiting (its oldest send), committing, handing out)');
  }
  if (report.sdk) {
    out.push('', 'SDK (Node, one core, 1 KiB)');
    out.push(table(['recipients', 'sealed/s', 'opened/s', 'seal+all opens/s'], report.sdk.rows.map((r) => [r.recipients, r.sealPerSec, r.openPerSec, r.endToEndPerSec])));
    out.push(`opened at sequences past ${report.sdk.highSeq.fromSeq.toLocaleString('en')}, receipt windows full: ${report.sdk.highSeq.openPerSec}/s (${report.sdk.highSeq.messages} messages)`);
    out.push(`libsodium ops/s: ${Object.entries(report.sdk.primitives).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  }
  if (report.connections) {
    const c = report.connections;
    out.push('', `Idle connections: ${c.established}/${c.requested} from ${c.clientProcesses} processes in ${c.connectSeconds} s; relay RSS ${c.relayRssBeforeMiB} → ${c.relayRssAfterMiB} MiB = ${c.kibPerConnection} KiB per connection`);
  }
  if (report.scaleOut) {
    out.push('', 'Scale-out (two relay processes, one PostgreSQL, closed loop, two-member groups)');
    out.push(
      table(
        ['config', 'deliv/s', 'dlv p99', 'cpu A', 'cpu B', 'cpu pg', 'errs'],
        report.scaleOut.runs.map((r) => [r.name, r.result.deliveredPerSec, r.result.delivery.p99, r.usage.relayA?.cpuCores ?? '', r.usage.relayB?.cpuCores ?? '', r.usage.postgres?.cpuCores ?? '', r.result.errors + r.result.outOfOrder]),
      ),
    );
  }
  if (report.hotspots) {
    out.push('', 'Relay CPU profile, top functions by self time (% of samples, self / inclusive)');
    for (const h of report.hotspots) out.push(`  ${h.selfPct.toFixed(1).padStart(5)} ${h.totalPct.toFixed(1).padStart(5)}  ${h.fn}`);
  }
  if (report.targets.length > 0) {
    out.push('', 'Targets');
    out.push(table(['met', 'target', 'measured'], report.targets.map((t) => [t.met === null ? 'n/a' : t.met ? 'yes' : 'NO', t.target, t.measured])));
  }
  return out.join('\n');
}

/** Machine facts for the report. */
export function machine(): BenchReport['machine'] {
  let fdLimit: number | undefined;
  try {
    const m = /Max open files\s+(\d+)/.exec(readFileSync('/proc/self/limits', 'utf8'));
    fdLimit = m ? Number(m[1]) : undefined;
  } catch {
    fdLimit = undefined;
  }
  return {
    cpus: os.cpus().length,
    model: os.cpus()[0]?.model.trim() ?? 'unknown',
    loadavg: os.loadavg().map((l) => Math.round(l * 100) / 100),
    node: process.version,
    fdLimit,
  };
}

/** Writes latest.json (one line) and latency.svg into `dir`; returns their paths. */
export function writeResults(report: BenchReport, dir: string): { json: string; svg: string } {
  mkdirSync(dir, { recursive: true });
  const json = path.join(dir, 'latest.json');
  const svg = path.join(dir, 'latency.svg');
  writeFileSync(json, `${JSON.stringify(report)}\n`);
  writeFileSync(svg, latencyChart(report.throughput?.runs ?? [], `Backchannel relay vs bare forwarder — ${report.startedAt.slice(0, 16)}`));
  return { json, svg };
}
