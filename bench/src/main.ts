import { mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { runConnections } from './connections.js';
import { hotspots } from './cpu-profile.js';
import { runOverload } from './overload.js';
import { Noise } from './noise.js';
import { progress } from './progress.js';
import { REPO_ROOT, startDatabase, type BenchDatabase } from './relay-under-test.js';
import { formatReport, judge, machine, writeResults, type BenchReport } from './report.js';
import { runScaleOut } from './scale-out.js';
import { runSdkBench } from './sdk-bench.js';
import { runThroughput } from './throughput.js';

const HELP = `npm run bench -- [options]

Measures the relay against a bare WebSocket forwarder (the ceiling) in the same run, on one
embedded PostgreSQL with fsync on, loopback only. Prints a table and one JSON line; writes
bench/results/latest.json and bench/results/latency.svg.

  --mode <list>        relay,overload,sdk,connections,scale-out (default: all five)
  --duration <ms>      measured window per run (default 4000)
  --warmup <ms>        warm-up before each window (default 1000)
  --rates <list>       open-loop rates in msgs/s (default 2500,5000,10000,15000)
  --window <n>         closed loop: unacknowledged sends per sender (default 2)
  --groups <n>         two-party channels (default 100)
  --fanout-groups <n>  eight-party channels (default 25; 0 skips the fan-out run)
  --fanout-size <n>    parties per fan-out channel (default 8)
  --procs <n>          load generator processes per system (default 2)
  --connections <n>    idle connections for mode connections (default 10000)
  --scale-groups <n>   two-party channels per scale-out run (default 50)
  --multiples <list>   mode overload: offered load as multiples of the relay's closed-loop
                       capacity measured in the same run (default 1.5,3)
  --noise              a CPU-burning neighbour spins on one core for the whole run
  --profile            write the relay's V8 CPU profile (mode relay, else overload) and list its hotspots
  --quick              a tiny run in seconds (what the tests use)
  --out <dir>          results folder (default bench/results)
  --help`;

const MODES = ['relay', 'overload', 'sdk', 'connections', 'scale-out'] as const;
type Mode = (typeof MODES)[number];

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      mode: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      rates: { type: 'string' },
      window: { type: 'string' },
      groups: { type: 'string' },
      'fanout-groups': { type: 'string' },
      'fanout-size': { type: 'string' },
      procs: { type: 'string' },
      connections: { type: 'string' },
      'scale-groups': { type: 'string' },
      multiples: { type: 'string' },
      noise: { type: 'boolean' },
      profile: { type: 'boolean' },
      quick: { type: 'boolean' },
      out: { type: 'string' },
      help: { type: 'boolean' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  const quick = values.quick === true;
  const num = (v: string | undefined, normal: number, tiny: number): number => {
    if (v === undefined) return quick ? tiny : normal;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new Error(`not a number: ${v}`);
    return n;
  };
  const modes = (values.mode ?? MODES.join(',')).split(',').map((m) => m.trim()) as Mode[];
  for (const m of modes) if (!MODES.includes(m)) throw new Error(`unknown mode ${m} (one of ${MODES.join(', ')})`);
  const warmupMs = num(values.warmup, 1_000, 300);
  const durationMs = num(values.duration, 4_000, 700);
  const procs = Math.max(1, num(values.procs, 2, 1));
  const rates = (values.rates ?? (quick ? '500,1000' : '2500,5000,10000,15000')).split(',').map(Number).filter((n) => n > 0);
  const out = path.resolve(values.out ?? path.join(REPO_ROOT, 'bench/results'));

  const startedAt = new Date().toISOString();
  const t0 = performance.now();
  let db: BenchDatabase | undefined;
  const stopOnSignal = (): void => {
    progress('interrupted: stopping');
    void Promise.all([noise?.stop(), db?.stop()]).finally(() => process.exit(130));
  };
  process.once('SIGINT', stopOnSignal);
  process.once('SIGTERM', stopOnSignal);

  const parts: { -readonly [K in 'throughput' | 'overload' | 'sdk' | 'connections' | 'scaleOut' | 'hotspots']?: BenchReport[K] } = {};
  const noise = values.noise === true ? Noise.start() : undefined;
  if (noise) progress('--noise: a CPU-burning neighbour spins on one core for the whole run');
  try {
    if (modes.some((m) => m !== 'sdk')) {
      progress('starting PostgreSQL (embedded, fsync and synchronous_commit on) in a temporary folder');
      db = await startDatabase();
    }
    // --profile: the relay of mode relay, or else of mode overload, writes a V8 CPU profile.
    const profDir = values.profile ? path.join(out, 'profile') : undefined;
    if (profDir) {
      rmSync(profDir, { recursive: true, force: true });
      mkdirSync(profDir, { recursive: true });
    }
    if (modes.includes('relay')) {
      parts.throughput = await runThroughput(db!, {
        warmupMs,
        durationMs,
        window: Math.max(1, num(values.window, 2, 1)),
        pairGroups: Math.max(1, num(values.groups, 100, 4)),
        fanoutGroups: num(values['fanout-groups'], 25, 2),
        fanoutSize: Math.max(2, num(values['fanout-size'], 8, 3)),
        rates,
        procs,
        ...(profDir ? { cpuProfDir: profDir } : {}),
      });
    }
    if (modes.includes('overload')) {
      parts.overload = await runOverload(db!, {
        warmupMs,
        durationMs,
        window: Math.max(1, num(values.window, 2, 1)),
        pairGroups: Math.max(1, num(values.groups, 100, 4)),
        multiples: (values.multiples ?? '1.5,3').split(',').map(Number).filter((n) => n > 0),
        procs,
        ...(profDir && !modes.includes('relay') ? { cpuProfDir: profDir } : {}),
        ...(noise ? { noisePid: noise.pid } : {}),
      });
    }
    if (profDir) {
      // The relay's main thread writes the largest profile.
      const files = readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile'));
      const largest = files.map((f) => path.join(profDir, f)).sort((a, b) => sizeOf(b) - sizeOf(a))[0];
      if (largest) {
        parts.hotspots = hotspots(largest, REPO_ROOT, 20).bySelf;
        progress(`relay CPU profile: ${path.relative(REPO_ROOT, largest)}`);
      }
    }
    if (modes.includes('sdk')) parts.sdk = await runSdkBench(quick ? 200 : 2_000);
    if (modes.includes('connections')) parts.connections = await runConnections(db!, Math.max(1, num(values.connections, 10_000, 50)));
    if (modes.includes('scale-out')) {
      parts.scaleOut = await runScaleOut(db!, {
        groups: Math.max(2, num(values['scale-groups'], 50, 4)),
        window: Math.max(1, num(values.window, 2, 1)),
        warmupMs,
        durationMs,
        procs,
      });
    }
  } finally {
    await noise?.stop();
    await db?.stop();
  }

  const { ratios, targets } = judge(parts);
  const report: BenchReport = {
    schema: 'backchannel-bench/1',
    startedAt,
    seconds: Math.round((performance.now() - t0) / 100) / 10,
    argv: process.argv.slice(2),
    machine: machine(),
    ...parts,
    ratios,
    targets,
  };
  const files = writeResults(report, out);
  process.stdout.write(`${formatReport(report)}\n\n`);
  process.stdout.write(`${JSON.stringify(report)}\n`);
  progress(`done in ${report.seconds} s; wrote ${path.relative(process.cwd(), files.json)} and ${path.relative(process.cwd(), files.svg)}`);
  return 0;
}

function sizeOf(file: string): number {
  return statSync(file).size;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
