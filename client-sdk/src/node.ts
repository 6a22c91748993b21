/**
 * @backchannel/client-sdk/node — pieces that need Node's file system.
 */
export { FileKeyStore, type FileKeyStoreProtection } from './node/file-key-store.js';
