import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../support/ports.js';
import { startTestRelay } from '../support/relay.js';
import { childEnv, tempDir } from './support/cli-process.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** A relay process in a process group of its own (as a shell or systemd starts one). */
interface Spawned {
  readonly child: ChildProcess;
  readonly lines: string[];
  readonly stderr: string[];
  /** Resolves once a stdout line contains `text`. */
  seen(text: string, timeoutMs?: number): Promise<void>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
}

function spawnRelay(command: string, args: string[], env: Record<string, string>): Spawned {
  const child = spawn(command, args, { cwd: ROOT, env: childEnv(env), detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const stderr: string[] = [];
  const waiters: { text: string; resolve: () => void }[] = [];
  let buffered = '';
  child.stdout!.on('data', (d: Buffer) => {
    buffered += d.toString();
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      lines.push(line);
      for (const w of waiters.filter((w) => line.includes(w.text))) w.resolve();
    }
  });
  child.stderr!.on('data', (d: Buffer) => stderr.push(d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal, at: Date.now() })));
  return {
    child,
    lines,
    stderr,
    exited,
    seen: (text, timeoutMs = 60_000) =>
      lines.some((l) => l.includes(text))
        ? Promise.resolve()
        : new Promise<void>((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(`no "${text}" within ${timeoutMs} ms:\n${lines.join('\n')}\n${stderr.join('')}`)), timeoutMs);
            waiters.push({ text, resolve: () => (clearTimeout(timer), resolve()) });
            void exited.then(() => reject(new Error(`exited before "${text}":\n${lines.join('\n')}\n${stderr.join('')}`)));
          }),
  };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const dirs: string[] = [];
async function embeddedEnv(): Promise<Record<string, string>> {
  const parent = await tempDir('bc-life-');
  await chmod(parent, 0o755);
  dirs.push(parent);
  return { BACKCHANNEL_DATA_DIR: path.join(parent, 'data'), BACKCHANNEL_EMBEDDED_PG_PORT: String(await freePort()), BACKCHANNEL_PORT: String(await freePort()) };
}
const postmasterPid = async (env: Record<string, string>): Promise<number> => Number((await readFile(path.join(env.BACKCHANNEL_DATA_DIR!, 'postgres', 'postmaster.pid'), 'utf8')).split('\n')[0]);

afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('drain', () => {
  it('answers /readyz 503 (and /healthz 200) for BACKCHANNEL_DRAIN_DELAY_MS before it closes', async () => {
    const relay = await startTestRelay({ BACKCHANNEL_DRAIN_DELAY_MS: '1500' });
    expect((await fetch(`${relay.url}/readyz`)).status).toBe(200);
    const started = Date.now();
    const closed = relay.close().then(() => Date.now());
    const during: number[] = [];
    for (let i = 0; i < 5; i++) {
      during.push((await fetch(`${relay.url}/readyz`)).status);
      expect((await fetch(`${relay.url}/healthz`)).status).toBe(200);
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(during).toEqual([503, 503, 503, 503, 503]);
    expect((await closed) - started).toBeGreaterThanOrEqual(1_500);
  });
});

describe('signals', () => {
  it('Ctrl-C to the bin\'s process group (bin and relay each get SIGINT) is one graceful stop: exit 0, embedded PostgreSQL stopped', async () => {
    const env = await embeddedEnv();
    const relay = spawnRelay(process.execPath, [path.join(ROOT, 'server/bin/backchannel.js'), 'start'], env);
    await relay.seen('{"event":"ready"');
    const pg = await postmasterPid(env);
    process.kill(-relay.child.pid!, 'SIGINT');
    const { code } = await relay.exited;
    expect(code, relay.stderr.join('')).toBe(0);
    expect(relay.stderr.join('')).not.toMatch(/again/);
    expect(relay.lines.some((l) => l.includes('"event":"relay_stopped"'))).toBe(true);
    expect(alive(pg)).toBe(false);
  });

  it('SIGTERM before ready undoes the start: no ready line, exit 0, no PostgreSQL and no lock left', async () => {
    const env = await embeddedEnv(); // a fresh folder: initdb makes the start slow
    const relay = spawnRelay(process.execPath, ['--conditions=source', '--import', 'tsx', 'server/src/cli.ts', 'start'], env);
    await relay.seen('"event":"relay_starting"');
    relay.child.kill('SIGTERM');
    const { code } = await relay.exited;
    expect(code, relay.stderr.join('')).toBe(0);
    expect(relay.lines.some((l) => l.startsWith('{"event":"ready"'))).toBe(false);
    expect(relay.lines.some((l) => l.includes('"beforeReady":true'))).toBe(true);
    expect(existsSync(path.join(env.BACKCHANNEL_DATA_DIR!, 'postgres', 'postmaster.pid'))).toBe(false);
    expect(existsSync(path.join(env.BACKCHANNEL_DATA_DIR!, 'backchannel.lock'))).toBe(false);
  });
});

describe('deploy/backchannel.service', () => {
  /** The unit's settings (last value of each key). */
  async function unit(): Promise<Map<string, string[]>> {
    const text = await readFile(path.join(ROOT, 'deploy/backchannel.service'), 'utf8');
    const out = new Map<string, string[]>();
    for (const line of text.split('\n')) {
      const m = /^([A-Za-z]+)=(.*)$/.exec(line);
      if (m) out.set(m[1]!, [...(out.get(m[1]!) ?? []), m[2]!]);
    }
    return out;
  }

  it('stops gracefully on the signals systemd sends (KillMode=mixed: SIGTERM to the main process only) well within TimeoutStopSec', async () => {
    const u = await unit();
    expect(u.get('KillMode')).toEqual(['mixed']);
    expect(u.get('KillSignal')).toEqual(['SIGTERM']);
    const timeoutMs = Number(u.get('TimeoutStopSec')![0]) * 1000;
    const [exe, ...args] = u.get('ExecStart')![0]!.split(' ');
    expect(exe).toBe('/usr/bin/node');
    const fromUnit = Object.fromEntries(u.get('Environment')!.map((e) => e.split('=') as [string, string]));
    // The unit's environment, with this test's folder and ports in place of /var/lib/backchannel.
    const env = { ...fromUnit, ...(await embeddedEnv()), BACKCHANNEL_DRAIN_DELAY_MS: '500' };
    const relay = spawnRelay(process.execPath, args, env);
    await relay.seen('{"event":"ready"');
    const pg = await postmasterPid(env);
    const stopAt = Date.now();
    process.kill(relay.child.pid!, 'SIGTERM'); // systemctl stop, KillMode=mixed
    const { code, at } = await relay.exited;
    expect(code, relay.stderr.join('')).toBe(0);
    expect(at - stopAt).toBeLessThan(timeoutMs);
    expect(relay.lines.some((l) => l.includes('"event":"relay_draining"'))).toBe(true);
    // Nothing left for systemd's final SIGKILL to the control group: PostgreSQL stopped cleanly.
    expect(alive(pg)).toBe(false);
  });
});
