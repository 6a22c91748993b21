/**
 * @backchannel/client-sdk/node — pieces that need Node's file system.
 */
export { FileKeyStore } from './node/file-key-store.js';
