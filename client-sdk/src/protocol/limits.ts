/** Protocol limits. The relay enforces them; the SDK checks them before sending. */
export const LIMITS = {
  /** Largest WebSocket message the relay accepts, in bytes (the relay's `maxPayload` default). */
  maxFrameBytes: 64 * 1024,
  /** Largest encrypted body, in bytes after decoding. */
  maxBodyBytes: 40 * 1024,
  /** Largest per-recipient header, in bytes after decoding. */
  maxHeaderBytes: 1024,
  /** Hard limit on members of one channel (a charter may set a lower cap). */
  maxMembers: 32,
  /** One-time prekeys accepted in one upload. */
  maxOneTimePrekeysPerUpload: 100,
  /** One-time prekeys the relay keeps per member key. */
  maxOneTimePrekeysStored: 200,
  /**
   * `prekeys.fetch` a member may make in one channel: at once, as many as the channel has active
   * members (a first send starts a session with each); then this many a minute.
   */
  prekeyFetchesPerMinute: 1,
  /** Messages the relay sends in one resume page before it waits for the client's ack. */
  resumePageSize: 256,
  /** Longest client message id. */
  maxClientMessageIdLength: 64,
  /** Longest charter purpose ciphertext, in bytes after decoding. */
  maxPurposeBytes: 4096,
} as const;

/** Protocol version carried in the WebSocket subprotocol `backchannel.v2`. */
export const PROTOCOL_VERSION = 2;
/**
 * Version byte of a pairwise header envelope (opaque to the relay; see `docs/protocol.md`).
 * 2: the header AEAD nonce is random and carried in the envelope (1 derived it from the message key).
 */
export const HEADER_ENVELOPE_VERSION = 2;
/** The WebSocket subprotocol name clients must offer. */
export const SUBPROTOCOL = 'backchannel.v2';
