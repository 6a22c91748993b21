/**
 * The cryptographic session layer: member keys, prekeys, X3DH, the Double Ratchet, group
 * messages with franking and integrity checks, receipt chains, governance signatures and safety
 * numbers. Everything stateful is a plain JSON object a key store can persist.
 */
export type { BytesLike } from './bytes.js';
export {
  generateMemberKeys,
  memberAddress,
  parseMemberKeys,
  serializeMemberKeys,
  MemberKeysSchema,
  type MemberKeys,
} from './member-keys.js';
export {
  KDF_CTX_CHAIN,
  KDF_CTX_HEADER,
  KDF_INFO_ROOT,
  KDF_INFO_X3DH,
  hkdf,
  kdfExpand,
  kdfExtract,
  subkey,
} from './kdf.js';
export {
  MAX_OLD_SIGNED_PREKEYS,
  addOneTimePrekeys,
  createPrekeyState,
  currentSignedPrekey,
  dropRetiredSignedPrekeys,
  nextPrekeyDeadline,
  unusedOneTimePrekeys,
  rotateSignedPrekey,
  signedPrekeyDue,
  signedPrekeyMessage,
  verifySignedPrekey,
  type PrekeyPair,
  type PrekeyState,
  type SignedPrekeyPair,
  type PublishedOneTimePrekey,
  type PublishedSignedPrekey,
} from './prekeys.js';
export {
  x3dhAssociatedData,
  x3dhInitiate,
  x3dhRespond,
  type PrekeyBundle,
  type X3dhInitiated,
  type X3dhPrefix,
  type X3dhResponded,
} from './x3dh.js';
export {
  MAX_COUNTER,
  MAX_SKIP,
  SKIPPED_KEY_LIFETIME,
  SKIPPED_KEY_MAX_AGE_MS,
  canSend,
  expireSkippedKeys,
  initRatchetInitiator,
  initRatchetResponder,
  ratchetDecrypt,
  ratchetEncrypt,
  ratchetForgeIncoming,
  type RatchetHeader,
  type RatchetState,
} from './double-ratchet.js';
export {
  MAX_PREVIOUS_SESSIONS,
  canSendTo,
  initiateSession,
  sessionDecrypt,
  sessionEncrypt,
  sessionForgeIncoming,
  type PeerSessions,
  type Session,
  type SessionDecrypted,
} from './session.js';
export { FRANKING_KEY_BYTES, frankingCommitment, verifyOpening } from './franking.js';
export { RECEIPT_CHAIN_GENESIS, nextReceiptChain } from './receipt-chain.js';
export { pad, paddedLength, unpad } from './padding.js';
export type { ReceiptRef } from './group-payload.js';
export type { SeqRun, SeqWindow } from './seq-window.js';
export {
  MAX_REMEMBERED_RECEIPTS,
  MAX_TRACKED_MISSING,
  createGroupState,
  forgetPeer,
  recordReceipt,
  type GroupState,
  type ReceiptRecorded,
  type SenderTrack,
} from './group-state.js';
export {
  MAX_PLAINTEXT_BYTES,
  forgeGroupMessage,
  nextTranscript,
  openGroupMessage,
  recipientsNeedingSession,
  sealGroupMessage,
  startSession,
  type GroupDelivery,
  type GroupRef,
  type IntegrityAlarm,
  type OpenGroupResult,
  type OpenedGroupMessage,
  type SealedGroupMessage,
} from './group-message.js';
export {
  checkpointMessage,
  consentMessage,
  grantMessage,
  groupMessage,
  handoverMessage,
  redeemMessage,
  signCheckpoint,
  signConsent,
  signGrant,
  signGroupChange,
  signRedeem,
  verifyCheckpoint,
  verifyConsent,
  verifyGrant,
  verifyGroupChange,
  verifyHandover,
  verifyRedeem,
  type CheckpointStatement,
  type ConsentStatement,
  type GrantStatement,
  type GroupStatement,
  type HandoverStatement,
  type RedeemStatement,
} from './signatures.js';
export { memberFingerprint, safetyNumber, type MemberPublicKeys } from './safety-number.js';
