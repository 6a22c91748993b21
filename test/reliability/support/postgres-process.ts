import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../../../server/src/db/embedded.js';

/**
 * A PostgreSQL of the test's own (embedded, on its own data folder and port) that the test may
 * crash: `kill -9` of the postmaster and every backend, as a machine or container crash does,
 * then a restart that runs crash recovery from the WAL.
 */
export class PostgresProcess {
  readonly dataDir: string;
  readonly port: number;
  readonly settings: Record<string, string>;
  #db: EmbeddedDatabase | undefined;

  constructor(dataDir: string, port: number, settings: Record<string, string> = {}) {
    this.dataDir = dataDir;
    this.port = port;
    this.settings = settings;
  }

  /** Admin URL (the `postgres` database; its password lives in the data folder, so it outlives restarts). */
  get adminUrl(): string {
    if (this.#adminUrl === undefined) throw new Error('PostgresProcess not started yet');
    return this.#adminUrl;
  }
  #adminUrl: string | undefined;

  /** Starts (initialising the folder on first use; after a crash, PostgreSQL recovers first). */
  async start(): Promise<void> {
    this.#db = await startEmbeddedPostgres({ dataDir: this.dataDir, port: this.port, settings: this.settings });
    this.#adminUrl = this.#db.adminUrl;
  }

  /** Creates a database and returns its URL. */
  async createDatabase(name: string): Promise<string> {
    const client = new pg.Client({ connectionString: this.adminUrl });
    await client.connect();
    try {
      await client.query(`create database ${name}`);
    } finally {
      await client.end();
    }
    return this.adminUrl.replace(/\/postgres$/, `/${name}`);
  }

  /** Forces a checkpoint: everything committed so far is on disk, whatever the settings. */
  async checkpoint(): Promise<void> {
    const client = new pg.Client({ connectionString: this.adminUrl });
    await client.connect();
    try {
      await client.query('checkpoint');
    } finally {
      await client.end();
    }
  }

  /** The postmaster's pid: the first line of `postmaster.pid`. */
  async postmasterPid(): Promise<number> {
    const text = await readFile(path.join(this.#db?.pgDir ?? path.join(this.dataDir, 'postgres'), 'postmaster.pid'), 'utf8');
    return Number(text.split('\n')[0]);
  }

  /**
   * `kill -9` of the postmaster and all its children at once: nothing is flushed, shared
   * memory (and any WAL not yet written) is gone, as in a crash of the machine's processes.
   * Resolves once every one of them is gone.
   */
  async kill9(): Promise<void> {
    const pid = await this.postmasterPid();
    const pids = [pid, ...(await childrenOf(pid))];
    for (const p of pids) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    for (let i = 0; i < 200 && pids.some(alive); i++) await new Promise((r) => setTimeout(r, 25));
    await this.#db?.stop(); // the server is gone already: this releases the data folder's lock
    this.#db = undefined;
  }

  /** Graceful stop (fast shutdown). */
  async stop(): Promise<void> {
    await this.#db?.stop();
    this.#db = undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function childrenOf(parent: number): Promise<number[]> {
  const out: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8');
      // pid (comm) state ppid …: comm may hold spaces, so split after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === parent) out.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}
