/**
 * Stable error codes. The same strings travel in `error` frames and in {@link BackchannelError#code};
 * every one is listed with its meaning in `docs/protocol.md`. Codes are never renamed or reused.
 */
export const ERROR_CODES = [
  // Frame level
  'bad_json',
  'bad_frame',
  'rate_limited',
  // Authentication and authorization
  'auth_failed',
  'auth_rate_limited',
  'forbidden',
  'not_member',
  'wrong_role',
  // Channels and messages
  'channel_not_found',
  'channel_closed',
  'member_not_found',
  'recipient_not_member',
  'body_too_large',
  'prekeys_exhausted',
  'prekey_signature_invalid',
  // Governance
  'invite_invalid',
  'invite_expired',
  'invite_used',
  'channel_full',
  'approval_invalid',
  'already_member',
  'charter_invalid',
  'group_invalid',
  'group_stale',
  'group_signature',
  'channel_legacy',
  // Disclosure
  'disclosure_not_found',
  'disclosure_state',
  'consent_invalid',
  'consent_missing',
  'content_mismatch',
  'opening_invalid',
  'excerpt_mismatch',
  'checkpoint_invalid',
  'draft_collision',
  // HTTP
  'not_found',
  'method_not_allowed',
  'origin_forbidden',
  // Relay state
  'unavailable',
  'overloaded',
  'internal',
  // Client side (never sent by the relay)
  'bad_argument',
  'aborted',
  'closed',
  'timeout',
  'integrity_body_hash',
  'integrity_forged_sender',
  'integrity_replay',
  'integrity_gap',
  'integrity_reorder',
  'integrity_fork',
  'integrity_roster',
  'integrity_group',
  'decrypt_failed',
  'one_time_prekey_missing',
  'counter_out_of_range',
  'key_changed',
  'not_verified',
  'record_invalid',
  'keystore_wrong_key',
  'keystore_plaintext',
  'keystore_invalid',
] as const;

/** A stable error code. */
export type ErrorCode = (typeof ERROR_CODES)[number];

/** WebSocket close codes the relay uses (4000–4999 are application codes). */
export const CLOSE_CODES = {
  /** Normal close. */
  normal: 1000,
  /** The relay is shutting down or draining; reconnect (elsewhere) with backoff. */
  goingAway: 1001,
  /** A frame could not be read as a protocol frame at all (binary, invalid UTF-8). */
  unsupportedData: 1003,
  /** Frame over `maxPayload`. */
  tooLarge: 1009,
  /** No pong to the last heartbeat ping. */
  heartbeatTimeout: 4000,
  /** The client did not read fast enough; its buffered output passed the bound. Resume later. */
  slowConsumer: 4001,
  /** Too many bad frames or a flood past the rate limit. */
  policyViolation: 4002,
  /** The member was removed from, or left, the channel, or the channel was dissolved. */
  membershipEnded: 4003,
} as const;

/**
 * The one error type of Backchannel. `code` is stable and machine-readable; `message` is for
 * people and may change.
 */
export class BackchannelError extends Error {
  override readonly name = 'BackchannelError';
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }

  /** True when `err` is a {@link BackchannelError}, with the given code if one is named. */
  static is(err: unknown, code?: ErrorCode): err is BackchannelError {
    return err instanceof BackchannelError && (code === undefined || err.code === code);
  }
}
