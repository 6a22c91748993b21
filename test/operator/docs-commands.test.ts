import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../support/ports.js';

const ROOT = new URL('../../', import.meta.url).pathname;

/** Every line of every ```sh block of a doc, in order. */
async function shellCommands(doc: string): Promise<string[]> {
  const text = await readFile(path.join(ROOT, doc), 'utf8');
  const blocks = [...text.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
  return blocks.flatMap((b) => b.split('\n')).map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
}

describe('docs/operator.md: every sh command works as written', () => {
  let dataDir = '';
  afterAll(async () => {
    if (dataDir !== '') await rm(dataDir, { recursive: true, force: true });
  });

  it('runs each command in order against a fresh relay (its port and data folder substituted)', async () => {
    const commands = await shellCommands('docs/operator.md');
    expect(commands[0]).toBe('npm start');
    expect(commands.length).toBeGreaterThanOrEqual(9);
    dataDir = await mkdtemp(path.join(tmpdir(), 'bc-docs-'));
    const port = await freePort();
    const env: NodeJS.ProcessEnv = { ...process.env, BACKCHANNEL_PORT: String(port), BACKCHANNEL_DATA_DIR: dataDir, BACKCHANNEL_EMBEDDED_PG_PORT: String(await freePort()) };
    delete env.DATABASE_URL;

    const relay = spawn('bash', ['-c', 'exec npm start'], { cwd: ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<void>((resolve) => relay.once('exit', () => resolve()));
    let out = '';
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`npm start not ready:\n${out}`)), 90_000);
        relay.stdout.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          if (out.includes('{"event":"ready"')) {
            clearTimeout(timer);
            resolve();
          }
        });
        relay.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
      });
      for (const command of commands.slice(1)) {
        const line = command.replaceAll('8787', String(port));
        const result = await promisify(execFile)('bash', ['-o', 'pipefail', '-c', line], { cwd: ROOT, env, timeout: 90_000 }).then(
          (r) => ({ code: 0, out: r.stdout }),
          (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: `${e.stdout}${e.stderr}` }),
        );
        expect(result.code, `\`${command}\` failed:\n${result.out}`).toBe(0);
      }
    } finally {
      // Ctrl-C: SIGINT to the foreground process group (npm and the relay under it).
      process.kill(-relay.pid!, 'SIGINT');
    }
    await exited;
    await new Promise((r) => setTimeout(r, 500));
    expect(out).toContain('"event":"relay_stopped"'); // the relay stopped gracefully
  });
});
