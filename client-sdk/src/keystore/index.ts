/** Key stores: where the SDK persists keys and session state. */
export type { KeyStore, KeyStoreOp } from './key-store.js';
export { toStoredJson } from './key-store.js';
export { MemoryKeyStore } from './memory-key-store.js';
export { IndexedDbKeyStore } from './indexeddb-key-store.js';
export { generateStoreKey, type StoreKey } from './sealed-entries.js';
