/**
 * @backchannel/client-sdk — the public surface. The wire protocol is at
 * `@backchannel/client-sdk/protocol`; Node-only pieces (file key store) at `@backchannel/client-sdk/node`.
 */
export { sodium, sodiumReady, type Sodium } from './sodium.js';
export { authProof } from './auth-proof.js';
export { BackchannelError, type ErrorCode } from './protocol/index.js';
export { nextReceiptChain, RECEIPT_CHAIN_GENESIS } from './crypto/receipt-chain.js';
export { newInviteSecret, inviteSecretHash, INVITE_SECRET_BYTES } from './invite.js';
export { verifySignedPrekey } from './crypto/prekeys.js';
export { signApproval, verifyApproval, signConsent, verifyConsent, type ApprovalStatement, type ConsentStatement } from './crypto/signatures.js';
export { RelayConnection, type PushFrame, type RelayConnectionOptions, type ChannelHandlers, type ConnectionIdentity, type RequestFrame, type ResponseMap } from './transport/relay-connection.js';
export type { ConnectionState, StateChange, StateReason } from './transport/state.js';
export type { Platform, WebSocketLike, WebSocketConstructor, FetchLike } from './transport/platform.js';
