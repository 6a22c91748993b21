import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { toStoredJson, type KeyStore, type KeyStoreOp } from '../keystore/key-store.js';

interface FileContents {
  version: 1;
  entries: Record<string, string>;
}

/**
 * A Node {@link KeyStore} kept in one JSON file. Every change rewrites the file atomically —
 * write a temporary file beside it, fsync it, rename it over the old one, fsync the folder — so
 * after a crash or kill -9 the file holds either the old or the new state, never a torn one.
 * Writes are serialised; one process should own a file at a time.
 */
export class FileKeyStore implements KeyStore {
  private queue: Promise<void> = Promise.resolve();
  private closed = false;

  private constructor(
    private readonly path: string,
    private entries: Map<string, string>,
  ) {}

  /** Opens the store at `path`, creating the folder; a missing file is an empty store. */
  static async open(path: string): Promise<FileKeyStore> {
    await mkdir(dirname(path), { recursive: true });
    let entries = new Map<string, string>();
    try {
      const parsed: unknown = JSON.parse(await readFile(path, 'utf8'));
      if (!isContents(parsed)) throw new Error(`${path} is not a Backchannel key store`);
      entries = new Map(Object.entries(parsed.entries));
    } catch (err) {
      if (!(err instanceof Error && 'code' in err && err.code === 'ENOENT')) throw err;
    }
    return new FileKeyStore(path, entries);
  }

  async get(key: string): Promise<unknown> {
    this.assertOpen();
    const text = this.entries.get(key);
    return text === undefined ? undefined : JSON.parse(text);
  }

  put(key: string, value: unknown): Promise<void> {
    return this.batch([{ type: 'put', key, value }]);
  }

  delete(key: string): Promise<void> {
    return this.batch([{ type: 'delete', key }]);
  }

  async list(prefix = ''): Promise<string[]> {
    this.assertOpen();
    return [...this.entries.keys()].filter((k) => k.startsWith(prefix)).sort();
  }

  batch(ops: readonly KeyStoreOp[]): Promise<void> {
    this.assertOpen();
    const run = this.queue.then(async () => {
      const next = new Map(this.entries);
      for (const op of ops) {
        if (op.type === 'put') next.set(op.key, toStoredJson(op.value));
        else next.delete(op.key);
      }
      await this.write(next);
      // Only a durable write becomes visible to readers.
      this.entries = next;
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.queue;
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('key store is closed');
  }

  private async write(entries: Map<string, string>): Promise<void> {
    const contents: FileContents = { version: 1, entries: Object.fromEntries(entries) };
    const tmp = join(dirname(this.path), `.${basename(this.path)}.${randomBytes(6).toString('hex')}.tmp`);
    const file = await open(tmp, 'wx', 0o600);
    try {
      await file.writeFile(JSON.stringify(contents), 'utf8');
      await file.sync();
    } catch (err) {
      await file.close();
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
    await file.close();
    await rename(tmp, this.path);
    await fsyncDir(dirname(this.path));
  }
}

async function fsyncDir(dir: string): Promise<void> {
  // Makes the rename itself durable; some platforms cannot open folders, which is harmless.
  try {
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // ignored: best effort on platforms without directory fsync
  }
}

function isContents(value: unknown): value is FileContents {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as { version?: unknown; entries?: unknown };
  if (v.version !== 1 || typeof v.entries !== 'object' || v.entries === null) return false;
  return Object.values(v.entries).every((e) => typeof e === 'string');
}
