/**
 * @backchannel/client-sdk — the public surface. The wire protocol is at
 * `@backchannel/client-sdk/protocol`; Node-only pieces (the file key store) at
 * `@backchannel/client-sdk/node`.
 *
 * Start with {@link convene} (a host) or {@link join} (an invitee): both return a
 * {@link ChannelClient}.
 */
export { sodium, sodiumReady, type Sodium } from './sodium.js';
export { authProof } from './auth-proof.js';
export { BackchannelError, type ErrorCode } from './protocol/index.js';
export { newInviteSecret, invitationKeys, INVITE_SECRET_BYTES } from './invite.js';
export {
  RelayConnection,
  type ChannelHandlers,
  type ConnectionIdentity,
  type PushFrame,
  type RelayConnectionOptions,
  type RequestFrame,
  type ResponseMap,
} from './transport/relay-connection.js';
export type { ConnectionState, StateChange, StateReason } from './transport/state.js';
export type { FetchLike, Platform, WebSocketConstructor, WebSocketLike } from './transport/platform.js';
export * from './channel/index.js';
export * from './group/index.js';
export * from './crypto/index.js';
export * from './keystore/index.js';
export * from './formal/index.js';
