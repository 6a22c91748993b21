import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../server/src/commands/run-cli.js';
import { openChannel } from '../support/members.js';
import { createTestDatabase, startTestRelay } from '../support/relay.js';

async function cli(args: string[], env: Record<string, string>): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCli(args, { stdout: (t) => (out += t), stderr: (t) => (err += t), env, cwd: process.cwd(), stopRequested: new Promise(() => undefined) });
  return { code, out, err };
}

describe('the backchannel CLI on a real database', () => {
  let env: Record<string, string>;
  beforeAll(async () => {
    env = { DATABASE_URL: await createTestDatabase() };
  });
  afterAll(() => undefined);

  it('migrate: status, up, down (with --yes), up again', async () => {
    expect((await cli(['migrate', 'status'], env)).out).toMatch(/2026-11-23T0001-relay-core\s+pending/);
    const up = await cli(['migrate', 'up'], env);
    expect(up.code).toBe(0);
    expect(up.out).toContain('applied 2026-11-23T0003-disclosure');
    expect((await cli(['migrate', 'down'], env)).code).toBe(2); // refuses without --yes
    const down = await cli(['migrate', 'down', '--yes'], env);
    expect(down.code).toBe(0);
    expect((await cli(['migrate', 'status'], env)).out).toMatch(/2026-11-23T0003-disclosure\s+pending/);
    expect((await cli(['migrate', 'up'], env)).code).toBe(0);
    expect((await cli(['migrate', 'status'], env)).out).not.toContain('pending');
  });

  it('keys: show prints public keys only; rotate changes the record key the relay publishes', async () => {
    const relay = await startTestRelay({ DATABASE_URL: env.DATABASE_URL! });
    const before = (await (await fetch(`${relay.url}/.well-known/backchannel.json`)).json()) as { recordKey: string };
    await relay.close();
    const shown = await cli(['keys', 'show'], env);
    expect(shown.code).toBe(0);
    expect(shown.out).toContain(before.recordKey);
    expect(shown.out.toLowerCase()).not.toContain('secret');
    const rotated = await cli(['keys', 'rotate', '--kind', 'record'], env);
    expect(rotated.code).toBe(0);
    const again = await startTestRelay({ DATABASE_URL: env.DATABASE_URL! });
    const after = (await (await fetch(`${again.url}/.well-known/backchannel.json`)).json()) as { recordKey: string; recordKeys: string[] };
    await again.close();
    expect(after.recordKey).not.toBe(before.recordKey);
    expect(after.recordKeys).toEqual([after.recordKey, before.recordKey]);
  });

  it('stats counts what exists, and nothing else', async () => {
    const relay = await startTestRelay({ DATABASE_URL: env.DATABASE_URL! });
    const ch = await openChannel(relay.url, 2);
    for (let i = 0; i < 3; i++) {
      await ch.parties[0]!.conn.request({ type: 'send', channel: ch.channel, clientMsgId: `s${i}`, headers: { [ch.parties[1]!.key]: 'AA' }, body: 'AA', commitment: 'A'.repeat(43) });
    }
    for (const m of [ch.host, ...ch.parties]) await m.conn.close();
    await relay.close();
    const stats = await cli(['stats', '--json'], env);
    expect(stats.code).toBe(0);
    // The keys test before this one left no channels: exactly what this test made is counted.
    expect(JSON.parse(stats.out)).toEqual({
      channels: { forming: 0, open: 1, dissolved: 0 },
      members: { pending: 0, active: 3, left: 0, removed: 0 },
      storedMessages: 3,
      queuedMessages: 3,
    });
    expect((await cli(['stats'], env)).out).toMatch(/messages stored\s+3\n/);
  });

  it('prints help for every command, refuses unknown commands (2), and names a bad variable (1)', async () => {
    for (const command of ['start', 'migrate', 'keys', 'stats', 'verify']) {
      const help = await cli([command, '--help'], env);
      expect(help.code, command).toBe(0);
      expect(help.out, command).toMatch(/^Usage: backchannel /);
    }
    expect((await cli(['--help'], env)).out).toContain('Commands:');
    const unknown = await cli(['launch'], env);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toContain("unknown command 'launch'");
    const bad = await cli(['stats'], { ...env, BACKCHANNEL_PORT: 'eighty' });
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/^backchannel: invalid BACKCHANNEL_PORT: .+\n$/);
  });

  it('as a process: a bad configuration value stops the start with one line and exit 1', async () => {
    const result = await promisify(execFile)(process.execPath, ['--conditions=source', '--import', 'tsx', 'server/src/cli.ts', 'start'], {
      env: { ...process.env, BACKCHANNEL_RATE_PER_SEC: '-5', DATABASE_URL: 'postgres://user:SECRETPW@127.0.0.1:1/x' },
    }).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => e,
    );
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^backchannel: invalid BACKCHANNEL_RATE_PER_SEC: /)]);
    expect(result.stderr).not.toContain('SECRETPW');
  });
});
