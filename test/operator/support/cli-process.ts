import { spawn } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { runCli } from '../../../server/src/commands/run-cli.js';

/** The repository root (where `npm start` runs). */
const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** How the Dockerfile runs the CLI (`node --conditions=source --import tsx server/src/cli.ts`). */
// tsx by file URL: `--import tsx` resolves from the cwd, and these runs use an empty temp folder.
const CLI_ARGS = ['--conditions=source', '--import', pathToFileURL(path.join(REPO_ROOT, 'node_modules/tsx/dist/loader.mjs')).href, path.join(REPO_ROOT, 'server/src/cli.ts')];

/** What a finished CLI run printed and returned. */
export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** An empty temporary directory (a cwd with no `.env`). */
export function tempDir(prefix = 'bc-op-'): Promise<string> {
  return mkdtemp(path.join(tmpdir(), prefix));
}

/** Runs the CLI in this process (fast): the same code path as the binary, minus `process.exit`. */
export async function cli(args: string[], env: Record<string, string>, cwd: string): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, {
    stdout: (t) => void (stdout += t),
    stderr: (t) => void (stderr += t),
    env,
    cwd,
    stopRequested: new Promise<void>(() => undefined),
  });
  return { code, stdout, stderr };
}

/** The environment for a child process: PATH and HOME only, plus `env` (no inherited Backchannel settings). */
export function childEnv(env: Record<string, string>): Record<string, string> {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', ...env };
}

/** Runs the real CLI as a child process and waits for it to exit. */
export function cliProcess(args: string[], env: Record<string, string>, cwd: string, timeoutMs = 60_000): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...CLI_ARGS, ...args], { cwd, env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
  });
}
