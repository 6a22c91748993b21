/**
 * Group messages. The body is encrypted once, under a fresh message key k_m; every recipient
 * gets, inside its pairwise Double Ratchet session with the sender, a header holding k_m, the
 * hash of the body ciphertext, the franking key k_f, the client message id, the sender's
 * per-sender counter n, its transcript hash T_n = H(T_{n-1} ‖ bodyHash ‖ c ‖ n) and the last
 * receipt (relay sequence and chain value) the sender knew.
 *
 * Body: nonce (24) ‖ XChaCha20-Poly1305(k_m, padded plaintext,
 *       AD = "backchannel/body/v1" ‖ version ‖ channel ‖ sender key ‖ c).
 *
 * What {@link openGroupMessage} reports (each a stable code, nothing accepted silently):
 *
 * | situation                                              | outcome                               |
 * | ------------------------------------------------------ | ------------------------------------- |
 * | header does not authenticate (forged sender, any bit flipped in header, wrong recipient) | rejected `integrity_forged_sender` |
 * | header unreadable (bad version/flags, truncated, unknown prekey, no session) | rejected `decrypt_failed`        |
 * | header counter ≥ 2^32-1 or > 1000 skips                 | rejected `counter_out_of_range` (before any key is derived) |
 * | body swapped or altered (hash differs from the header's) | rejected `integrity_body_hash`        |
 * | commitment altered, or not opened by (k_f, plaintext)   | rejected `integrity_body_hash`        |
 * | same message again (also after a restart)               | rejected `integrity_replay`           |
 * | same relay sequence re-delivered with the same content  | `duplicate` (at-least-once delivery; no alarm) |
 * | sender counter jumps ahead                             | delivered, alarm `integrity_gap`      |
 * | a counter skipped earlier arrives late                  | delivered, alarm `integrity_reorder`  |
 * | receipt chain or transcript contradicts what we saw     | delivered, alarm `integrity_fork`     |
 *
 * Gaps, reorders and forks are delivered because the message itself is authentic: the alarm is
 * about the relay (or the network), and the application must surface it; withholding an
 * authentic message would only help an attacker hide what was said.
 *
 * No function here decides who the recipients are: the caller passes the verified roster's
 * parties. Never pass a host or observer — they must never receive message keys.
 */
import { BackchannelError, LIMITS, PROTOCOL_VERSION, type ErrorCode } from '../protocol/index.js';
import { sodium, sodiumReady } from '../sodium.js';
import { b64, bytesEqual, bytesOf, concat, decodeReceived, label, u64be } from './bytes.js';
import { FRANKING_KEY_BYTES, frankingCommitment, verifyOpening } from './franking.js';
import { decodeGroupPayload, encodeGroupPayload, type GroupPayload } from './group-payload.js';
import {
  MAX_TRACKED_MISSING,
  recordReceipt,
  rememberDelivered,
  type GroupState,
  type SenderTrack,
} from './group-state.js';
import { pad, unpad } from './padding.js';
import { randomBytes } from './random.js';
import { windowGet } from './seq-window.js';
import { direct } from './sodium-direct.js';
import { canSendTo, initiateSession, sessionDecrypt, sessionEncrypt, sessionForgeIncoming } from './session.js';
import type { PrekeyBundle } from './x3dh.js';

const BODY_LABEL = label('backchannel/body/v1');
const TRANSCRIPT_LABEL = label('backchannel/transcript/v1');
const NONCE_BYTES = 24;
const MESSAGE_KEY_BYTES = 32;
const TAG_BYTES = 16;

/** A verified group state as a header names it. */
export interface GroupRef {
  epoch: number;
  stateHash: string;
}

/** What a sender hands the relay (the `send` frame's headers, body and commitment). */
export interface SealedGroupMessage {
  /** One header per recipient member key, base64url. */
  headers: Record<string, string>;
  body: string;
  commitment: string;
}

/** A message as the relay delivered it to us. */
export interface GroupDelivery {
  from: string;
  header: string;
  body: string;
  commitment: string;
  seq: number;
  chain: string;
  /** When given, the chain value is also checked to extend the previous sequence's value. */
  receivedAt?: number;
}

/** An authenticated, decrypted group message. */
export interface OpenedGroupMessage {
  from: string;
  plaintext: Uint8Array;
  clientMsgId: string;
  /** The sender's per-sender counter. */
  counter: number;
  /** The sender's verified group state when it sent: epoch and state hash (base64url). */
  group: GroupRef;
  seq: number;
  commitment: string;
  /** k_f: keep it to open this message in a disclosure later. Secret until then. */
  frankingKey: string;
}

/** A non-fatal integrity finding: the message was delivered, the application must show this. */
export interface IntegrityAlarm {
  code: Extract<ErrorCode, 'integrity_gap' | 'integrity_reorder' | 'integrity_fork'>;
  message: string;
  /** For a gap: the sender counters that are missing. */
  missing?: number[];
}

/** Outcome of {@link openGroupMessage}. On `rejected` and `duplicate` the state is unchanged. */
export type OpenGroupResult =
  | { status: 'delivered'; state: GroupState; message: OpenedGroupMessage; alarms: IntegrityAlarm[] }
  | { status: 'duplicate'; state: GroupState }
  | { status: 'rejected'; state: GroupState; error: BackchannelError };

/** Largest plaintext whose padded, encrypted body fits the relay's body limit. */
export const MAX_PLAINTEXT_BYTES = 32 * 1024 - 1;

function bodyAd(channel: string, sender: string, commitment: Uint8Array): Uint8Array {
  return concat(BODY_LABEL, Uint8Array.of(PROTOCOL_VERSION), bytesOf(channel, 16), bytesOf(sender, 32), commitment);
}

/** T_n = BLAKE2b-256("backchannel/transcript/v1" ‖ T_{n-1} ‖ bodyHash ‖ c ‖ n (8 B BE)). */
export function nextTranscript(prev: Uint8Array, bodyHash: Uint8Array, commitment: Uint8Array, counter: number): Uint8Array {
  return sodium.crypto_generichash(32, concat(TRANSCRIPT_LABEL, prev, bodyHash, commitment, u64be(counter)), null);
}

/** Recipients in `recipients` with no session we can send on: fetch their bundles first. */
export function recipientsNeedingSession(state: GroupState, recipients: readonly string[]): string[] {
  return recipients.filter((r) => !canSendTo(state.sessions[r]));
}

/**
 * Starts a pairwise session with a member from its prekey bundle. `peerSignKey` must be the
 * member's sign key from the verified roster (`prekey_signature_invalid` otherwise).
 */
export async function startSession(state: GroupState, bundle: PrekeyBundle, peerSignKey: string): Promise<GroupState> {
  if (bundle.member === state.self.dhPublic) throw new RangeError('no session with oneself');
  const sessions = await initiateSession(state.self, state.channel, bundle, peerSignKey, state.sessions[bundle.member]);
  return { ...state, sessions: { ...state.sessions, [bundle.member]: sessions } };
}

interface EncryptedBody {
  body: Uint8Array;
  bodyHash: Uint8Array;
  commitment: Uint8Array;
  messageKey: Uint8Array;
  frankingKey: Uint8Array;
}

function encryptBody(channel: string, sender: string, plaintext: Uint8Array): EncryptedBody {
  if (plaintext.length > MAX_PLAINTEXT_BYTES) throw new BackchannelError('body_too_large', 'message too large');
  // Every secret of the message from one draw: k_f ‖ k_m ‖ nonce.
  const fresh = randomBytes(FRANKING_KEY_BYTES + MESSAGE_KEY_BYTES + NONCE_BYTES);
  const frankingKey = fresh.subarray(0, FRANKING_KEY_BYTES);
  const messageKey = fresh.subarray(FRANKING_KEY_BYTES, FRANKING_KEY_BYTES + MESSAGE_KEY_BYTES);
  const nonce = fresh.subarray(FRANKING_KEY_BYTES + MESSAGE_KEY_BYTES);
  const commitment = frankingCommitment(frankingKey, plaintext);
  const ct = direct().aeadEncrypt(pad(plaintext), bodyAd(channel, sender, commitment), nonce, messageKey);
  const body = concat(nonce, ct);
  if (body.length > LIMITS.maxBodyBytes) throw new BackchannelError('body_too_large', 'message too large');
  return { body, bodyHash: sodium.crypto_generichash(32, body, null), commitment, messageKey, frankingKey };
}

/**
 * Seals a group message to `recipients` (member keys of the verified roster's parties other
 * than ourselves; every one needs a session — see {@link recipientsNeedingSession}). Returns
 * the new state, which must be persisted before the message is sent.
 */
export async function sealGroupMessage(
  state: GroupState,
  input: { recipients: readonly string[]; plaintext: Uint8Array; clientMsgId: string; group: GroupRef },
): Promise<{ state: GroupState; message: SealedGroupMessage; frankingKey: string }> {
  await sodiumReady();
  if (input.recipients.length === 0) throw new RangeError('no recipients');
  const me = state.self.dhPublic;
  const enc = encryptBody(state.channel, me, input.plaintext);
  const counter = state.outgoing.counter + 1;
  const transcript = nextTranscript(bytesOf(state.outgoing.transcript, 32), enc.bodyHash, enc.commitment, counter);
  const payload = encodeGroupPayload({
    messageKey: enc.messageKey,
    bodyHash: enc.bodyHash,
    frankingKey: enc.frankingKey,
    clientMsgId: input.clientMsgId,
    counter,
    transcript,
    groupEpoch: input.group.epoch,
    groupState: bytesOf(input.group.stateHash, 32, 'group state hash'),
    lastReceipt: state.lastReceipt && { seq: state.lastReceipt.seq, chain: bytesOf(state.lastReceipt.chain, 32) },
  });
  const sessions = { ...state.sessions };
  const headers: Record<string, string> = {};
  // Decoded once for every recipient's header.
  const channel = bytesOf(state.channel, 16, 'channel');
  const sender = bytesOf(me, 32, 'sender key');
  for (const r of new Set(input.recipients)) {
    if (r === me) throw new RangeError('a message is never encrypted to its sender');
    const peer = sessions[r];
    if (!peer || !canSendTo(peer)) throw new RangeError(`no session with recipient ${r}: call startSession first`);
    const out = sessionEncrypt(peer, state.self, channel, sender, r, payload);
    sessions[r] = out.sessions;
    headers[r] = b64(out.envelope);
  }
  payload.fill(0);
  enc.messageKey.fill(0);
  return {
    state: { ...state, sessions, outgoing: { counter, transcript: b64(transcript) } },
    message: { headers, body: b64(enc.body), commitment: b64(enc.commitment) },
    // The sender keeps k_f too: it may later open its own message in a disclosure.
    frankingKey: b64(enc.frankingKey),
  };
}

function reject(state: GroupState, err: unknown): OpenGroupResult {
  const error = BackchannelError.is(err)
    ? err
    : new BackchannelError('decrypt_failed', 'message could not be opened', { cause: err });
  return { status: 'rejected', state, error };
}

/** Applies the sender-counter rules; returns the new track and alarms, or throws `integrity_replay`. */
function trackCounter(
  state: GroupState,
  track: SenderTrack | undefined,
  p: GroupPayload,
  bodyHash: Uint8Array,
  commitment: Uint8Array,
): { track: SenderTrack; alarms: IntegrityAlarm[] } {
  const n = p.counter;
  const claimed = b64(p.transcript);
  if (n < 1) throw new BackchannelError('integrity_replay', 'sender counter 0 is never used');
  if (!track) {
    if (state.adoptNewSenders) return { track: { next: n + 1, transcript: claimed, missing: [] }, alarms: [] };
    track = { next: 1, transcript: b64(new Uint8Array(32)), missing: [] };
  }
  if (n === track.next) {
    const alarms: IntegrityAlarm[] = [];
    if (track.transcript !== null) {
      const expected = nextTranscript(bytesOf(track.transcript, 32), bodyHash, commitment, n);
      if (!bytesEqual(expected, p.transcript)) {
        alarms.push({ code: 'integrity_fork', message: "the sender's transcript differs from the messages received" });
      }
    }
    return { track: { next: n + 1, transcript: claimed, missing: track.missing }, alarms };
  }
  if (n > track.next) {
    const missing = [...track.missing];
    const gap: number[] = [];
    for (let m = track.next; m < n && gap.length < MAX_TRACKED_MISSING; m++) gap.push(m);
    missing.push(...gap);
    return {
      track: { next: n + 1, transcript: claimed, missing: missing.slice(-MAX_TRACKED_MISSING) },
      alarms: [{ code: 'integrity_gap', message: `missing ${n - track.next} message(s) from this sender`, missing: gap }],
    };
  }
  if (track.missing.includes(n)) {
    return {
      track: { ...track, missing: track.missing.filter((m) => m !== n) },
      alarms: [{ code: 'integrity_reorder', message: 'message arrived after later ones from the same sender' }],
    };
  }
  throw new BackchannelError('integrity_replay', 'sender counter already seen');
}

/**
 * Opens a delivered group message. Never throws for anything the relay or a peer can cause:
 * the result is `delivered` (with alarms), `duplicate`, or `rejected` with a stable code (see
 * the table above). Persist `state` from a `delivered` result before showing the message.
 */
export async function openGroupMessage(state: GroupState, d: GroupDelivery): Promise<OpenGroupResult> {
  await sodiumReady();
  if (windowGet(state.delivered, d.seq) === d.commitment && windowGet(state.receipts, d.seq) === d.chain) {
    return { status: 'duplicate', state };
  }
  try {
    if (d.from === state.self.dhPublic) throw new BackchannelError('integrity_forged_sender', 'message claims to be from us');
    const envelope = decodeReceived(d.header, 'decrypt_failed', 'header');
    const body = decodeReceived(d.body, 'integrity_body_hash', 'body');
    const commitment = decodeReceived(d.commitment, 'integrity_body_hash', 'commitment', 32);
    bytesOf(d.chain, 32, 'chain');
    const opened = await sessionDecrypt(state.sessions[d.from], state.self, state.prekeys, state.channel, d.from, envelope);
    const p = decodeGroupPayload(opened.payload);
    const bodyHash = sodium.crypto_generichash(32, body, null);
    if (!bytesEqual(bodyHash, p.bodyHash)) throw new BackchannelError('integrity_body_hash', 'body differs from the one the sender sent');
    if (body.length < NONCE_BYTES + TAG_BYTES) throw new BackchannelError('integrity_body_hash', 'body too short');
    let padded: Uint8Array;
    try {
      padded = direct().aeadDecrypt(
        body.subarray(NONCE_BYTES),
        bodyAd(state.channel, d.from, commitment),
        body.subarray(0, NONCE_BYTES),
        p.messageKey,
      );
    } catch (cause) {
      // The body hash matched, so what changed is the commitment (or the body was sealed to another channel).
      throw new BackchannelError('integrity_body_hash', 'commitment differs from the one the sender made', { cause });
    }
    p.messageKey.fill(0);
    const plaintext = unpad(padded).slice();
    if (!verifyOpening(commitment, p.frankingKey, plaintext)) {
      throw new BackchannelError('integrity_body_hash', 'commitment is not opened by the plaintext');
    }
    const counted = trackCounter(state, state.incoming[d.from], p, bodyHash, commitment);
    const alarms = [...counted.alarms];

    let next: GroupState = {
      ...state,
      prekeys: opened.prekeys,
      sessions: { ...state.sessions, [d.from]: opened.sessions },
      incoming: { ...state.incoming, [d.from]: counted.track },
    };
    const link = d.receivedAt === undefined ? undefined : { commitment: d.commitment, receivedAt: d.receivedAt };
    const own = recordReceipt(next, d.seq, d.chain, link);
    if (own.fork) alarms.push({ code: 'integrity_fork', message: `relay chain at seq ${d.seq} contradicts the one seen before` });
    next = own.state;
    if (p.lastReceipt !== null) {
      const quoted = recordReceipt(next, p.lastReceipt.seq, b64(p.lastReceipt.chain));
      if (quoted.fork) {
        alarms.push({ code: 'integrity_fork', message: `sender saw a different history at seq ${p.lastReceipt.seq}` });
      }
      next = quoted.state;
    }
    next = rememberDelivered(next, d.seq, d.commitment);
    return {
      status: 'delivered',
      state: next,
      alarms,
      message: {
        from: d.from,
        plaintext,
        clientMsgId: p.clientMsgId,
        counter: p.counter,
        group: { epoch: p.groupEpoch, stateHash: b64(p.groupState) },
        seq: d.seq,
        commitment: d.commitment,
        frankingKey: b64(p.frankingKey),
      },
    };
  } catch (err) {
    return reject(state, err);
  }
}

/**
 * Deniability, made concrete: from this member's own state alone, produces a header, body and
 * commitment that its client accepts as a message from `sender` (with the sender's next
 * counter and a consistent transcript). Pairwise keys are symmetric, so a transcript proves
 * nothing to anyone else about who wrote it. The state is not changed.
 */
export async function forgeGroupMessage(
  state: GroupState,
  input: { sender: string; plaintext: Uint8Array; clientMsgId: string; group: GroupRef },
): Promise<SealedGroupMessage> {
  await sodiumReady();
  const peer = state.sessions[input.sender];
  if (!peer) throw new RangeError('no session with that sender');
  const enc = encryptBody(state.channel, input.sender, input.plaintext);
  const track = state.incoming[input.sender];
  const counter = track?.next ?? 1;
  const prev = track?.transcript ?? b64(new Uint8Array(32));
  const payload = encodeGroupPayload({
    messageKey: enc.messageKey,
    bodyHash: enc.bodyHash,
    frankingKey: enc.frankingKey,
    clientMsgId: input.clientMsgId,
    counter,
    transcript: nextTranscript(bytesOf(prev, 32), enc.bodyHash, enc.commitment, counter),
    groupEpoch: input.group.epoch,
    groupState: bytesOf(input.group.stateHash, 32, 'group state hash'),
    lastReceipt: null,
  });
  const envelope = sessionForgeIncoming(peer, state.self, state.channel, input.sender, payload);
  return { headers: { [state.self.dhPublic]: b64(envelope) }, body: b64(enc.body), commitment: b64(enc.commitment) };
}
