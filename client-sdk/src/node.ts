/**
 * @backchannel/client-sdk/node — pieces that need Node: the file key store, and the platform
 * (`ws` as the WebSocket on Node 20) without casts.
 */
export { FileKeyStore, type FileKeyStoreProtection } from './node/file-key-store.js';
export { nodePlatform, type NodeWebSocketClass } from './node/platform.js';
