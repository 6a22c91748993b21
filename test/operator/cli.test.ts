import { existsSync } from 'node:fs';
import { readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toBase64Url } from '@backchannel/client-sdk/protocol';
import { loadConfig } from '../../server/src/config.js';
import { MIGRATIONS_DIR } from '../../server/src/db/migrate.js';
import { startRelay } from '../../server/src/relay.js';
import { inviteAndRedeem, openChannel, rawMember, type RawMember } from '../support/members.js';
import { convene, rawCharter } from '../../bench/src/raw-group.js';
import { freePort } from '../support/ports.js';
import { createTestDatabase, startTestRelay } from '../support/relay.js';
import { cli, cliProcess, tempDir } from './support/cli-process.js';

const COMMANDS = ['start', 'migrate', 'keys', 'stats', 'verify', 'compare'];

async function migrationNames(): Promise<string[]> {
  return (await readdir(MIGRATIONS_DIR)).filter((f) => /^\d{4}-.*\.ts$/.test(f)).map((f) => f.replace(/\.ts$/, '')).sort();
}

interface WellKnown {
  authKey: string;
  recordKey: string;
  recordKeys: string[];
}

async function wellKnown(url: string): Promise<WellKnown> {
  const res = await fetch(new URL('/.well-known/backchannel.json', url));
  return (await res.json()) as WellKnown;
}

let cwd: string;
beforeAll(async () => {
  cwd = await tempDir();
});
afterAll(async () => {
  await rm(cwd, { recursive: true, force: true });
});

describe('backchannel CLI: usage', () => {
  it('prints the global help listing every command, with --help, -h and help', async () => {
    for (const args of [['--help'], ['-h'], ['help']]) {
      const r = await cli(args, {}, cwd);
      expect(r.code).toBe(0);
      for (const name of COMMANDS) expect(r.stdout).toMatch(new RegExp(`^  ${name} `, 'm'));
    }
  });

  it('prints each command its own --help, and `help <command>` prints the same', async () => {
    for (const name of COMMANDS) {
      const r = await cli([name, '--help'], {}, cwd);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^Usage: backchannel ${name}`));
      expect((await cli(['help', name], {}, cwd)).stdout).toBe(r.stdout);
    }
  });

  it('rejects an unknown command, flag, action or extra argument with exit 2', async () => {
    for (const args of [['launch'], ['--port', '1'], ['stats', '--verbose'], ['migrate'], ['migrate', 'sideways'], ['keys', 'export'], ['keys', 'rotate', '--kind', 'signing'], ['stats', 'extra'], ['help', 'nope']]) {
      const r = await cli(args, {}, cwd);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/^backchannel: /);
      expect(r.stdout).toBe('');
    }
  });

  it('refuses `migrate down` without --yes (exit 2) before touching any database', async () => {
    const r = await cli(['migrate', 'down'], { DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' }, cwd);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--yes');
  });

  it('stops on a bad configuration value with one line naming the variable, never its value, and exit 1', async () => {
    const port = await cli(['stats'], { BACKCHANNEL_PORT: 'eighty' }, cwd);
    expect(port.code).toBe(1);
    expect(port.stderr).toMatch(/^backchannel: invalid BACKCHANNEL_PORT: .+\n$/);
    const url = await cli(['stats'], { DATABASE_URL: 'mysql://admin:hunter2@db.internal/x' }, cwd);
    expect(url.code).toBe(1);
    expect(url.stderr).toMatch(/^backchannel: invalid DATABASE_URL: .+\n$/);
    expect(url.stderr).not.toContain('hunter2');
  });

  it('exits with those codes as a real process too (exit 1 and one stderr line; exit 2)', async () => {
    const bad = await cliProcess(['start'], { BACKCHANNEL_LOG_LEVEL: 'chatty', DATABASE_URL: 'postgres://relay:SECRETPW@127.0.0.1:1/x' }, cwd);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^backchannel: invalid BACKCHANNEL_LOG_LEVEL: [^\n]+\n$/);
    expect(bad.stderr).not.toContain('SECRETPW');
    // The same failure as one JSON log line on stdout, where the relay's logs go, with its code.
    const lines = bad.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 60, event: 'start_failed', code: 'config_invalid', msg: expect.stringMatching(/^invalid BACKCHANNEL_LOG_LEVEL: /) as unknown });
    expect(bad.stdout).not.toContain('SECRETPW');
    const unknown = await cliProcess(['frobnicate'], {}, cwd);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("unknown command 'frobnicate'");
  });
});

describe('backchannel CLI: .env', () => {
  it('reads ./.env, and a variable already set in the environment wins over it', async () => {
    const dir = await tempDir();
    try {
      const databaseUrl = await createTestDatabase();
      await writeFile(path.join(dir, '.env'), `# relay settings\nexport DATABASE_URL="${databaseUrl}"\nBACKCHANNEL_LOG_LEVEL=loud # overridden below\n`);
      const fromFile = await cli(['migrate', 'status', '--json'], {}, dir);
      expect(fromFile.code).toBe(1);
      expect(fromFile.stderr).toMatch(/^backchannel: invalid BACKCHANNEL_LOG_LEVEL: /);
      const overridden = await cli(['migrate', 'status', '--json'], { BACKCHANNEL_LOG_LEVEL: 'info' }, dir);
      expect(overridden.code).toBe(0);
      expect((JSON.parse(overridden.stdout) as unknown[]).length).toBe((await migrationNames()).length);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('names the line of a malformed .env and exits 1', async () => {
    const dir = await tempDir();
    try {
      await writeFile(path.join(dir, '.env'), 'BACKCHANNEL_PORT=8787\nthis is not a setting\n');
      const r = await cli(['stats'], {}, dir);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe('backchannel: invalid .env line 2: expected KEY=VALUE\n');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('backchannel migrate', () => {
  it('lists, applies, reverts and re-applies migrations on a real database', async () => {
    const env = { DATABASE_URL: await createTestDatabase() };
    const names = await migrationNames();
    const status = async () => {
      const r = await cli(['migrate', 'status', '--json'], env, cwd);
      expect(r.code).toBe(0);
      return JSON.parse(r.stdout) as { name: string; appliedAt: string | null }[];
    };
    expect((await status()).map((m) => [m.name, m.appliedAt])).toEqual(names.map((n) => [n, null]));

    const up = await cli(['migrate', 'up'], env, cwd);
    expect(up.code).toBe(0);
    expect(up.stdout.trim().split('\n')).toEqual(names.map((n) => `applied ${n}`));
    expect((await status()).every((m) => m.appliedAt !== null)).toBe(true);
    expect((await cli(['migrate', 'up'], env, cwd)).stdout).toBe('already up to date\n');

    const down = await cli(['migrate', 'down', '--yes', '--json'], env, cwd);
    expect(down.code).toBe(0);
    expect(JSON.parse(down.stdout)).toEqual({ reverted: [names.at(-1)] });
    const after = await status();
    expect(after.at(-1)?.appliedAt).toBeNull();
    expect(after.slice(0, -1).every((m) => m.appliedAt !== null)).toBe(true);

    // keys/stats refuse a schema that is not current, with a hint
    const stats = await cli(['stats'], env, cwd);
    expect(stats.code).toBe(1);
    expect(stats.stderr).toContain('migrate up');

    const again = await cli(['migrate', 'up', '--json'], env, cwd);
    expect(JSON.parse(again.stdout)).toEqual({ applied: [names.at(-1)] });
    const table = await cli(['migrate', 'status'], env, cwd);
    expect(table.stdout).toMatch(/^MIGRATION\s+APPLIED\n/);
    expect(table.stdout).not.toContain('pending');
  });

  it('works on the embedded database: starts it for the command and stops it after, or joins a running relay', async () => {
    const dataDir = await tempDir('bc-op-embedded-');
    const env = { BACKCHANNEL_DATA_DIR: dataDir, BACKCHANNEL_EMBEDDED_PG_PORT: String(await freePort()) };
    try {
      const up = await cli(['migrate', 'up'], env, cwd);
      expect(up.code, up.stderr).toBe(0);
      expect(existsSync(path.join(dataDir, 'postgres', 'PG_VERSION'))).toBe(true);
      expect(existsSync(path.join(dataDir, 'postgres', 'postmaster.pid'))).toBe(false); // stopped after the command

      const relay = await startRelay(loadConfig({ ...env, BACKCHANNEL_PORT: '0', BACKCHANNEL_LOG_LEVEL: 'silent' }));
      try {
        const stats = await cli(['stats', '--json'], env, cwd);
        expect(stats.code, stats.stderr).toBe(0);
        expect(JSON.parse(stats.stdout)).toMatchObject({ storedMessages: 0, queuedMessages: 0 });
        // The relay's own PostgreSQL is still up: the command joined it rather than replacing it.
        expect((await fetch(new URL('/readyz', relay.url))).status).toBe(200);
      } finally {
        await relay.close();
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe('backchannel keys', () => {
  it('shows public keys only, and a rotated record key is what /.well-known serves after a restart', async () => {
    const first = await startTestRelay();
    const env = { DATABASE_URL: first.databaseUrl };
    const before = await wellKnown(first.url);
    await first.close();

    const shown = await cli(['keys', 'show', '--json'], env, cwd);
    expect(shown.code).toBe(0);
    const keys = JSON.parse(shown.stdout) as { auth: string; record: string; recordHistory: { publicKey: string; retiredAt: string | null }[] };
    expect(keys.auth).toBe(before.authKey);
    expect(keys.record).toBe(before.recordKey);

    const rotated = await cli(['keys', 'rotate', '--kind', 'record', '--json'], env, cwd);
    expect(rotated.code).toBe(0);
    const r = JSON.parse(rotated.stdout) as { kind: string; previous: string; current: string };
    expect(r).toMatchObject({ kind: 'record', previous: before.recordKey });
    expect(r.current).not.toBe(before.recordKey);

    const text = await cli(['keys', 'show'], env, cwd);
    expect(text.stdout).toContain(`record key  ${r.current}`);
    expect(text.stdout).toContain(before.recordKey); // retired, still listed for verifiers

    // Nothing the command printed contains a secret key.
    const client = new pg.Client({ connectionString: env.DATABASE_URL });
    await client.connect();
    const secrets = (await client.query<{ secret_key: Buffer }>('select secret_key from relay_keys')).rows.map((row) => row.secret_key);
    await client.end();
    expect(secrets.length).toBe(3);
    for (const out of [shown.stdout, rotated.stdout, text.stdout]) {
      for (const s of secrets) {
        expect(out).not.toContain(toBase64Url(new Uint8Array(s)));
        expect(out).not.toContain(toBase64Url(new Uint8Array(s.subarray(0, 32))));
        expect(out).not.toContain(s.toString('hex'));
        expect(out).not.toContain(s.toString('base64'));
      }
    }

    const second = await startTestRelay(env);
    try {
      const after = await wellKnown(second.url);
      expect(after.recordKey).toBe(r.current);
      expect(after.recordKeys).toEqual([r.current, before.recordKey]); // the old one still verifies old records
      expect(after.authKey).toBe(before.authKey);
    } finally {
      await second.close();
    }

    const auth = await cli(['keys', 'rotate', '--kind', 'auth'], env, cwd);
    expect(auth.code).toBe(0);
    const shownAgain = JSON.parse((await cli(['keys', 'show', '--json'], env, cwd)).stdout) as { auth: string };
    expect(shownAgain.auth).not.toBe(before.authKey);
  });
});

describe('backchannel stats', () => {
  it('counts channels, members by status, stored and queued messages as the test created them', async () => {
    const relay = await startTestRelay();
    const env = { DATABASE_URL: relay.databaseUrl };
    const conns: RawMember[] = [];
    try {
      const ch = await openChannel(relay.url, 2);
      const [alice, bob] = ch.parties as [RawMember, RawMember];
      conns.push(ch.host, alice, bob);
      const pending = await rawMember(relay.url);
      conns.push(pending);
      await inviteAndRedeem(ch.host, ch.channel, pending); // redeemed, never approved
      const forming = await rawMember(relay.url);
      conns.push(forming);
      await forming.conn.connect();
      await convene(forming, rawCharter(4, { retentionSec: 86_400 }));
      for (let i = 0; i < 3; i++) {
        await alice.conn.request({
          type: 'send',
          channel: ch.channel,
          clientMsgId: `s${i}`,
          headers: { [bob.key]: toBase64Url(new Uint8Array([i])) },
          body: toBase64Url(new Uint8Array(16)),
          commitment: toBase64Url(new Uint8Array(32).fill(i)),
        });
      }
      // Bob sends one to Alice too: Bob's own message is never queued for Bob.
      await bob.conn.request({
        type: 'send',
        channel: ch.channel,
        clientMsgId: 'b0',
        headers: { [alice.key]: toBase64Url(new Uint8Array([9])) },
        body: toBase64Url(new Uint8Array(16)),
        commitment: toBase64Url(new Uint8Array(32).fill(9)),
      });

      const stats = async () => {
        const r = await cli(['stats', '--json'], env, cwd);
        expect(r.code, r.stderr).toBe(0);
        return JSON.parse(r.stdout) as { channels: Record<string, number>; members: Record<string, number>; storedMessages: number; queuedMessages: number };
      };
      expect(await stats()).toEqual({
        channels: { forming: 1, open: 1, dissolved: 0 },
        // host + 2 parties of the open channel, and the convener of the forming one
        members: { pending: 1, active: 4, left: 0, removed: 0 },
        storedMessages: 4,
        queuedMessages: 4,
      });

      // Bob takes his three; once his acks reach the database only Alice's one is queued.
      let got = 0;
      bob.conn.subscribe(ch.channel, { after: () => 0, deliver: async () => void got++ });
      await expect.poll(() => got, { timeout: 10_000 }).toBe(3);
      await expect.poll(async () => (await stats()).queuedMessages, { timeout: 10_000, interval: 300 }).toBe(1);

      const text = await cli(['stats'], env, cwd);
      expect(text.stdout).toMatch(/^messages queued\s+1$/m);
      expect(text.stdout).toMatch(/^members pending\s+1$/m);
    } finally {
      for (const m of conns) await m.conn.close();
      await relay.close();
    }
  });
});
