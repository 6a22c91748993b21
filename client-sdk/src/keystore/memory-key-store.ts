import { toStoredJson, type KeyStore, type KeyStoreOp } from './key-store.js';

/**
 * An in-memory {@link KeyStore}. Values are kept as JSON text, so callers never share objects
 * with the store and a value that cannot be persisted fails here as it would elsewhere.
 */
export class MemoryKeyStore implements KeyStore {
  private readonly entries = new Map<string, string>();

  async get(key: string): Promise<unknown> {
    const text = this.entries.get(key);
    return text === undefined ? undefined : JSON.parse(text);
  }

  async put(key: string, value: unknown): Promise<void> {
    this.entries.set(key, toStoredJson(value));
  }

  async delete(key: string): Promise<void> {
    this.entries.delete(key);
  }

  async list(prefix = ''): Promise<string[]> {
    return [...this.entries.keys()].filter((k) => k.startsWith(prefix)).sort();
  }

  async batch(ops: readonly KeyStoreOp[]): Promise<void> {
    // Serialise everything first so one bad value leaves the store untouched.
    const staged = ops.map((op) => (op.type === 'put' ? { key: op.key, text: toStoredJson(op.value) } : { key: op.key, text: undefined }));
    for (const s of staged) {
      if (s.text === undefined) this.entries.delete(s.key);
      else this.entries.set(s.key, s.text);
    }
  }

  async close(): Promise<void> {}
}
