import { toStoredJson, type KeyStore, type KeyStoreOp } from './key-store.js';

const STORE = 'kv';

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

/**
 * A browser {@link KeyStore} on IndexedDB: one database with one object store of JSON text.
 * A batch is one readwrite transaction, which IndexedDB commits atomically; writes use
 * `durability: 'strict'` so a resolved put has reached disk.
 */
export class IndexedDbKeyStore implements KeyStore {
  private constructor(private readonly db: IDBDatabase) {}

  /** Opens (creating if needed) the database `name`. `factory` defaults to `globalThis.indexedDB`. */
  static async open(name: string, factory: IDBFactory = globalThis.indexedDB): Promise<IndexedDbKeyStore> {
    if (!factory) throw new Error('IndexedDB is not available');
    const req = factory.open(name, 1);
    req.onupgradeneeded = () => {
      if (!req.result.objectStoreNames.contains(STORE)) req.result.createObjectStore(STORE);
    };
    return new IndexedDbKeyStore(await request(req));
  }

  private tx(mode: IDBTransactionMode): IDBTransaction {
    return mode === 'readwrite'
      ? this.db.transaction(STORE, mode, { durability: 'strict' })
      : this.db.transaction(STORE, mode);
  }

  async get(key: string): Promise<unknown> {
    const text: unknown = await request(this.tx('readonly').objectStore(STORE).get(key));
    return typeof text === 'string' ? JSON.parse(text) : undefined;
  }

  put(key: string, value: unknown): Promise<void> {
    return this.batch([{ type: 'put', key, value }]);
  }

  delete(key: string): Promise<void> {
    return this.batch([{ type: 'delete', key }]);
  }

  async list(prefix = ''): Promise<string[]> {
    const keys = await request(this.tx('readonly').objectStore(STORE).getAllKeys());
    return keys.filter((k): k is string => typeof k === 'string' && k.startsWith(prefix)).sort();
  }

  async batch(ops: readonly KeyStoreOp[]): Promise<void> {
    const staged = ops.map((op) => (op.type === 'put' ? { key: op.key, text: toStoredJson(op.value) } : { key: op.key, text: undefined }));
    const tx = this.tx('readwrite');
    const finished = done(tx);
    const store = tx.objectStore(STORE);
    for (const s of staged) {
      if (s.text === undefined) store.delete(s.key);
      else store.put(s.text, s.key);
    }
    await finished;
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
