import { BackchannelError } from '../protocol/index.js';
import { toStoredJson, type KeyStore, type KeyStoreOp } from './key-store.js';
import { StoreCipher, type SealedEntries, type StoreKey } from './sealed-entries.js';

/** The object store of version 2: one record, the sealed entries. */
const SEALED = 'sealed';
const RECORD = 'entries';
/** The object store of version 1 (JSON text in clear, one record per entry): read only to migrate. */
const PLAINTEXT = 'kv';
const DB_VERSION = 2;

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error('IndexedDB request failed'));
  });
}

function done(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onabort = () => reject(tx.error ?? new Error('IndexedDB transaction aborted'));
    tx.onerror = () => reject(tx.error ?? new Error('IndexedDB transaction failed'));
  });
}

function isSealed(value: unknown): value is SealedEntries {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as { iv?: unknown; ciphertext?: unknown };
  return v.iv instanceof Uint8Array && v.ciphertext instanceof Uint8Array;
}

async function openDb(name: string, factory: IDBFactory | undefined): Promise<IDBDatabase> {
  if (!factory) throw new Error('IndexedDB is not available');
  const req = factory.open(name, DB_VERSION);
  req.onupgradeneeded = () => {
    if (!req.result.objectStoreNames.contains(SEALED)) req.result.createObjectStore(SEALED);
  };
  return request(req);
}

/** The entries of a version 1 store (none when there is no such object store). */
async function plaintextEntries(db: IDBDatabase): Promise<Map<string, string>> {
  if (!db.objectStoreNames.contains(PLAINTEXT)) return new Map();
  const store = db.transaction(PLAINTEXT, 'readonly').objectStore(PLAINTEXT);
  const [keys, values] = await Promise.all([request(store.getAllKeys()), request(store.getAll())]);
  const entries = new Map<string, string>();
  keys.forEach((k, i) => {
    const text: unknown = values[i];
    if (typeof k === 'string' && typeof text === 'string') entries.set(k, text);
  });
  return entries;
}

/**
 * A browser {@link KeyStore} on IndexedDB, encrypted at rest: every name and value is inside one
 * AES-256-GCM ciphertext (see `sealed-entries.ts`), one record in the database, under a key the
 * application supplies — a non-extractable `CryptoKey` (see `generateStoreKey`), which script
 * can use but never read, or 32 bytes it derives itself (from a passphrase with its own
 * memory-hard KDF, or a WebAuthn PRF output). A batch is one readwrite transaction with
 * `durability: 'strict'`, so a resolved put has reached disk; writes are serialised, and one
 * page should own a store at a time.
 *
 * Errors at open: `keystore_wrong_key` (the key does not open the store — nothing is written),
 * `keystore_plaintext` (an unencrypted store of an older SDK: see {@link IndexedDbKeyStore.migrate}),
 * `keystore_invalid` (the record is not a key store's).
 */
export class IndexedDbKeyStore implements KeyStore {
  private queue: Promise<void> = Promise.resolve();
  private closed = false;

  private constructor(
    private readonly db: IDBDatabase,
    private readonly cipher: StoreCipher,
    private readonly context: string,
    private entries: Map<string, string>,
  ) {}

  /** Opens (creating if needed) the database `name` under `key`. `factory` defaults to `globalThis.indexedDB`. */
  static async open(name: string, key: StoreKey, factory: IDBFactory = globalThis.indexedDB): Promise<IndexedDbKeyStore> {
    const cipher = await StoreCipher.from(key);
    const db = await openDb(name, factory);
    try {
      if ((await plaintextEntries(db)).size > 0) {
        throw new BackchannelError('keystore_plaintext', `IndexedDB ${name} is an unencrypted key store: migrate it with IndexedDbKeyStore.migrate`);
      }
      const context = `indexeddb/${name}`;
      const record: unknown = await request(db.transaction(SEALED, 'readonly').objectStore(SEALED).get(RECORD));
      if (record === undefined) return new IndexedDbKeyStore(db, cipher, context, new Map());
      if (!isSealed(record)) throw new BackchannelError('keystore_invalid', `IndexedDB ${name} is not a Backchannel key store`);
      return new IndexedDbKeyStore(db, cipher, context, await cipher.open(record, context));
    } catch (err) {
      db.close();
      throw err;
    }
  }

  /**
   * Encrypts an unencrypted (version 1) store under `key`, in one transaction that also empties
   * the old records: resolves true when it did, false when there was nothing to migrate (so it is
   * safe to call before every {@link IndexedDbKeyStore.open}). The browser may keep the old bytes
   * in its storage files until it compacts them.
   */
  static async migrate(name: string, key: StoreKey, factory: IDBFactory = globalThis.indexedDB): Promise<boolean> {
    const cipher = await StoreCipher.from(key);
    const db = await openDb(name, factory);
    try {
      const entries = await plaintextEntries(db);
      if (entries.size === 0) return false;
      const sealed = await cipher.seal(entries, `indexeddb/${name}`);
      const tx = db.transaction([SEALED, PLAINTEXT], 'readwrite', { durability: 'strict' });
      const finished = done(tx);
      tx.objectStore(SEALED).put(sealed, RECORD);
      tx.objectStore(PLAINTEXT).clear();
      await finished;
      return true;
    } finally {
      db.close();
    }
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
      // Sealed before the transaction opens: an IndexedDB transaction commits at the first await.
      const sealed = await this.cipher.seal(next, this.context);
      const tx = this.db.transaction(SEALED, 'readwrite', { durability: 'strict' });
      const finished = done(tx);
      tx.objectStore(SEALED).put(sealed, RECORD);
      await finished;
      // Only a durable write becomes visible to readers.
      this.entries = next;
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.queue;
    this.db.close();
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('key store is closed');
  }
}
