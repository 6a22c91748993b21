/**
 * Where the SDK keeps secrets and session state: a small async key/value store of
 * JSON-serialisable values. Ratchet state must be saved before a decrypted message is handed
 * to the application (else a crash would replay or lose it), and several keys often change
 * together, so every store offers an atomic {@link KeyStore.batch}.
 *
 * Implementations: {@link MemoryKeyStore} (tests, ephemeral use), `IndexedDbKeyStore`
 * (browsers) and `FileKeyStore` (Node, from `@backchannel/client-sdk/node`).
 */

/** One change in a {@link KeyStore.batch}. */
export type KeyStoreOp = { type: 'put'; key: string; value: unknown } | { type: 'delete'; key: string };

/** An async key/value store of JSON-serialisable values. */
export interface KeyStore {
  /** The stored value (a fresh copy), or undefined. */
  get(key: string): Promise<unknown>;
  /** Stores a JSON-serialisable value durably before resolving. */
  put(key: string, value: unknown): Promise<void>;
  /** Removes a key (no error when absent). */
  delete(key: string): Promise<void>;
  /** Every key starting with `prefix` (all keys when omitted), sorted. */
  list(prefix?: string): Promise<string[]>;
  /** Applies all operations atomically: after a crash either all or none are visible. */
  batch(ops: readonly KeyStoreOp[]): Promise<void>;
  /** Releases resources; the store must not be used afterwards. */
  close(): Promise<void>;
}

/**
 * Serialises a value to JSON text, refusing values JSON would silently change (undefined,
 * functions, non-finite numbers, typed arrays), since a store must give back what it was given.
 */
export function toStoredJson(value: unknown): string {
  check(value, '$');
  return JSON.stringify(value);
}

function check(value: unknown, path: string): void {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError(`${path} is not a finite number`);
    return;
  }
  if (Array.isArray(value)) {
    value.forEach((v, i) => check(v, `${path}[${i}]`));
    return;
  }
  if (typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    for (const [k, v] of Object.entries(value)) {
      if (v !== undefined) check(v, `${path}.${k}`);
    }
    return;
  }
  throw new TypeError(`${path} is not JSON-serialisable`);
}
