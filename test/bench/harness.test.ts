import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '..', '..');

function runBench(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', 'bench/src/main.ts', ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

interface Run {
  system: string;
  workload: string;
  mode: string;
  offered?: number;
  result: { deliveredPerSec: number; ackedPerSec: number; errors: number; outOfOrder: number; ack: { p99: number }; delivery: { p99: number } };
}

// Not timed: a tiny load (seconds) through every mode, checking that the harness works end to
// end and that what it writes is well formed.
describe('npm run bench', () => {
  let out: string;
  afterAll(async () => {
    if (out) await rm(out, { recursive: true, force: true });
  });

  it('runs a tiny load through every mode and writes well-formed JSON and SVG', { timeout: 240_000 }, async () => {
    out = await mkdtemp(path.join(tmpdir(), 'bc-bench-test-'));
    const { code, stdout, stderr } = await runBench(['--quick', '--noise', '--connections', '40', '--out', out]);
    expect(code, stderr.slice(-2000)).toBe(0);
    expect(stderr).toContain('done in');

    // The last stdout line is the JSON report, identical to latest.json.
    const lastLine = stdout.trimEnd().split('\n').at(-1)!;
    const file = await readFile(path.join(out, 'latest.json'), 'utf8');
    expect(file.trimEnd().split('\n')).toHaveLength(1);
    expect(JSON.parse(lastLine)).toEqual(JSON.parse(file));
    const report = JSON.parse(file) as {
      schema: string;
      throughput: { runs: Run[] };
      sdk: { rows: { recipients: number; sealPerSec: number; openPerSec: number }[]; highSeq: { fromSeq: number; openPerSec: number } };
      connections: { established: number; requested: number; kibPerConnection: number };
      scaleOut: { runs: { name: string; result: Run['result'] }[]; ratio: number };
      overload: {
        noise: boolean;
        capacity: { relay: number; ceiling: number };
        runs: (Run & { retry?: boolean; result: { refused: number; acked: number; sent: number }; pipeline?: { batches: number; meanBatch: number }; usage: Record<string, { cpuCores: number }> })[];
        goodput: { multiple: number; clients: string; ratio: number }[];
      };
      ratios: Record<string, number>;
      targets: { id: string; met: boolean | null }[];
    };
    expect(report.schema).toBe('backchannel-bench/1');

    const runs = report.throughput.runs;
    for (const system of ['ceiling', 'relay']) {
      expect(runs.filter((r) => r.system === system && r.mode === 'closed')).toHaveLength(2);
      expect(runs.filter((r) => r.system === system && r.mode === 'open').map((r) => r.offered)).toEqual([500, 1000]);
    }
    for (const r of [...runs, ...report.scaleOut.runs]) {
      expect(r.result.deliveredPerSec).toBeGreaterThan(0);
      expect(r.result.errors).toBe(0);
      expect(r.result.outOfOrder).toBe(0);
      expect(Number.isFinite(r.result.ack.p99)).toBe(true);
    }
    expect(report.scaleOut.runs.map((r) => r.name)).toEqual(['one-node', 'two-nodes-split', 'two-nodes-cross']);
    expect(report.sdk.rows.map((r) => r.recipients)).toEqual([1, 7]);
    expect(report.sdk.highSeq.fromSeq).toBe(1_000_000);
    expect(report.sdk.highSeq.openPerSec).toBeGreaterThan(0);
    expect(stdout).toContain('opened at sequences past 1,000,000');
    expect(report.connections.established).toBe(40);
    expect(report.ratios.durable2Member).toBeGreaterThan(0);
    expect(report.targets.map((t) => t.id)).toEqual(expect.arrayContaining(['durable-2-member', 'fan-out', 'idle-connections', 'two-nodes', 'sdk-fan-out', 'overload-goodput']));

    // Mode overload: capacity first, then each multiple offered by the ceiling, open-loop and
    // retrying clients of the relay; the noise neighbour was sampled in every run.
    const o = report.overload;
    expect(o.noise).toBe(true);
    expect(o.capacity.relay).toBeGreaterThan(0);
    expect(o.runs.map((r) => [r.system, r.mode, r.retry === true])).toEqual([
      ['ceiling', 'closed', false],
      ['relay', 'closed', false],
      ...[1.5, 3].flatMap(() => [
        ['ceiling', 'open', false],
        ['relay', 'open', false],
        ['relay', 'open', true],
      ]),
    ]);
    expect(o.goodput.map((g) => [g.multiple, g.clients])).toEqual([[1.5, 'open'], [1.5, 'retrying'], [3, 'open'], [3, 'retrying']]);
    for (const r of o.runs) {
      expect(r.result.acked).toBeGreaterThan(0);
      expect(r.result.outOfOrder).toBe(0);
      expect(r.result.errors).toBe(r.result.refused);
      expect(r.usage.noise!.cpuCores).toBeGreaterThan(0);
      if (r.system === 'relay') expect(r.pipeline!.batches).toBeGreaterThan(0);
    }
    expect(stdout).toContain('goodput÷cap');
    expect(stdout).toContain('Relay vs ceiling');

    const svg = await readFile(path.join(out, 'latency.svg'), 'utf8');
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    // Well formed: every element opened is closed, in order.
    const stack: string[] = [];
    for (const m of svg.matchAll(/<(\/?)([a-zA-Z]+)[^>]*?(\/?)>/g)) {
      if (m[3] === '/') continue;
      if (m[1] === '/') expect(stack.pop()).toBe(m[2]);
      else stack.push(m[2]!);
    }
    expect(stack).toEqual([]);
    expect(svg).toContain('relay ack p99');
    expect(svg).toContain('ceiling ack p99');
  });
});
