import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { GroupSpec } from './channels.js';
import { Histogram, type LatencySummary } from './histogram.js';
import type { GeneratorCommand, GeneratorPlan, GeneratorReply, GeneratorResult, RunSpec } from './load-generator.js';
import { REPO_ROOT, TSX_FLAGS } from './relay-under-test.js';

/**
 * The parent's side of the load generators: forks them, deals the groups out (whole groups per
 * process), runs every measured run on all of them at once and merges what they measured.
 */

/** A run's merged figures. */
export interface LoadResult {
  readonly seconds: number;
  /** Sends acknowledged per second (the relay's committed message rate). */
  readonly ackedPerSec: number;
  /** Deliveries received per second (each send counts once per recipient). */
  readonly deliveredPerSec: number;
  readonly sent: number;
  readonly acked: number;
  readonly delivered: number;
  readonly skipped: number;
  readonly errors: number;
  /** Of the errors: sends answered `overloaded` (each attempt counts). */
  readonly refused: number;
  readonly firstError: string | undefined;
  readonly outOfOrder: number;
  readonly ack: LatencySummary;
  readonly delivery: LatencySummary;
}

/** How the fleet is made up. */
export interface FleetOptions {
  readonly procs: number;
  readonly urls: string[];
  /** Which url a member uses: by its index in the group (default) or by its group's index. */
  readonly spread?: 'members' | 'groups';
  readonly auth: boolean;
  readonly groups: GroupSpec[];
  readonly sendersPerGroup: number;
  readonly bodyBytes?: number;
  readonly headerBytes?: number;
}

class GeneratorProcess {
  readonly child: ChildProcess;
  #waiting: { resolve: (r: GeneratorReply) => void; reject: (e: Error) => void } | undefined;

  constructor() {
    this.child = fork(path.join(REPO_ROOT, 'bench/src/load-generator.ts'), [], {
      cwd: REPO_ROOT,
      execArgv: TSX_FLAGS,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.child.on('message', (msg: GeneratorReply) => {
      const w = this.#waiting;
      this.#waiting = undefined;
      if (msg.type === 'failed') w?.reject(new Error(`load generator: ${msg.message}`));
      else w?.resolve(msg);
    });
    this.child.on('exit', (code) => {
      this.#waiting?.reject(new Error(`load generator exited (${code})`));
      this.#waiting = undefined;
    });
  }

  ask(cmd: GeneratorCommand): Promise<GeneratorReply> {
    return new Promise((resolve, reject) => {
      this.#waiting = { resolve, reject };
      this.child.send(cmd);
    });
  }
}

/** A set of load generator processes sharing one workload. */
export class LoadFleet {
  readonly #procs: GeneratorProcess[];

  private constructor(procs: GeneratorProcess[]) {
    this.#procs = procs;
  }

  /** Forks the generators, connects every member and waits until all are subscribed. */
  static async start(options: FleetOptions): Promise<LoadFleet> {
    const n = Math.max(1, Math.min(options.procs, options.groups.length));
    const procs = Array.from({ length: n }, () => new GeneratorProcess());
    const fleet = new LoadFleet(procs);
    try {
      await Promise.all(
        procs.map((p, i) => {
          const plan: GeneratorPlan = {
            urls: options.urls,
            ...(options.spread ? { spread: options.spread } : {}),
            auth: options.auth,
            groups: options.groups.filter((_, g) => g % n === i),
            sendersPerGroup: options.sendersPerGroup,
            bodyBytes: options.bodyBytes ?? 1024,
            headerBytes: options.headerBytes ?? 120,
          };
          return p.ask({ cmd: 'init', plan });
        }),
      );
    } catch (err) {
      await fleet.close();
      throw err;
    }
    return fleet;
  }

  /** Process ids of the generators (for CPU sampling). */
  get pids(): number[] {
    return this.#procs.map((p) => p.child.pid!);
  }

  /** Runs one measured run on every generator; an open-loop rate is split evenly. */
  async run(spec: RunSpec): Promise<LoadResult> {
    const n = this.#procs.length;
    const each: RunSpec = spec.mode === 'open' ? { ...spec, rate: spec.rate / n } : spec;
    const replies = await Promise.all(this.#procs.map((p) => p.ask({ cmd: 'run', spec: each })));
    const results = replies.flatMap((r) => (r.type === 'result' ? [r.result] : []));
    return merge(results);
  }

  /** Stops every generator. */
  async close(): Promise<void> {
    await Promise.all(
      this.#procs.map(
        (p) =>
          new Promise<void>((resolve) => {
            if (p.child.exitCode !== null) return resolve();
            p.child.once('exit', () => resolve());
            try {
              p.child.send({ cmd: 'stop' } satisfies GeneratorCommand);
            } catch {
              p.child.kill();
            }
            setTimeout(() => p.child.kill('SIGKILL'), 3_000).unref();
          }),
      ),
    );
  }
}

function merge(results: GeneratorResult[]): LoadResult {
  const ack = new Histogram();
  const delivery = new Histogram();
  let seconds = 0;
  const sum = (f: (r: GeneratorResult) => number): number => results.reduce((a, r) => a + f(r), 0);
  for (const r of results) {
    ack.merge(r.ack);
    delivery.merge(r.delivery);
    seconds = Math.max(seconds, r.seconds);
  }
  const acked = sum((r) => r.acked);
  const delivered = sum((r) => r.delivered);
  return {
    seconds,
    ackedPerSec: Math.round(acked / seconds),
    deliveredPerSec: Math.round(delivered / seconds),
    sent: sum((r) => r.sent),
    acked,
    delivered,
    skipped: sum((r) => r.skipped),
    errors: sum((r) => r.errors),
    refused: sum((r) => r.refused),
    firstError: results.find((r) => r.firstError !== undefined)?.firstError,
    outOfOrder: sum((r) => r.outOfOrder),
    ack: ack.summary(),
    delivery: delivery.summary(),
  };
}
