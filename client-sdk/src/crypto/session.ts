/**
 * Pairwise sessions between two members of a channel: X3DH to start, the Double Ratchet after,
 * and the envelope that carries one ratchet message on the wire.
 *
 * Envelope (binary):
 *
 *   version u8 (=2) ‖ flags u8 (bit 0: X3DH prefix, bit 1: one-time prekey used)
 *   [prefix: IK 32 ‖ EK 32 ‖ SPK id u32 ‖ [OPK id u32]] ‖ ratchet header (40) ‖ nonce (24) ‖ AEAD ciphertext
 *
 * Version 1 envelopes (no nonce: it was derived from the message key) are still opened, so
 * messages sealed before the change and queued on the relay are not lost; they are never sent.
 *
 * The AEAD's associated data is "backchannel/header/v1" ‖ version ‖ channel (16) ‖ sender key
 * (32) ‖ recipient key (32) ‖ every clear byte before the ciphertext — so a header cannot be
 * moved to another channel, another sender or recipient, or stripped of its prefix.
 *
 * An initiator repeats the prefix on every message until the first reply arrives, so any of its
 * first messages can open the session. When both members initiate at once each ends up with
 * two sessions; the one that last received becomes active (as Signal does), and the others
 * stay available to decrypt late messages until {@link MAX_PREVIOUS_SESSIONS} newer ones exist.
 */
import { BackchannelError, HEADER_ENVELOPE_VERSION } from '../protocol/index.js';
import { ByteReader, b64, bytesOf, concat, label, putU32be, type BytesLike } from './bytes.js';
import {
  initRatchetInitiator,
  initRatchetResponder,
  ratchetDecrypt,
  ratchetEncrypt,
  ratchetForgeIncoming,
  readRatchetHeader,
  encodeRatchetHeader,
  type RatchetHeader,
  type RatchetState,
} from './double-ratchet.js';
import type { MemberKeys } from './member-keys.js';
import type { PrekeyState } from './prekeys.js';
import { x3dhInitiate, x3dhRespond, type PrekeyBundle, type X3dhPrefix } from './x3dh.js';

/** Sessions kept besides the active one. */
export const MAX_PREVIOUS_SESSIONS = 4;
/** X3DH ephemeral keys remembered per peer so a replayed initial message cannot open a new session. */
const MAX_USED_BASE_KEYS = 64;
const HEADER_LABEL = label('backchannel/header/v1');
/** Envelopes sealed before header nonces were random: opened (their nonce derived), never made. */
const LEGACY_ENVELOPE_VERSION = 1;
const FLAG_PREFIX = 1;
const FLAG_OPK = 2;

/** One ratchet session with a peer. */
export interface Session {
  ratchet: RatchetState;
  /** The X3DH ephemeral key that opened the session: identifies it. */
  baseKey: string;
  /** Set while we initiated and have not yet received anything: sent on every message. */
  pendingPrefix: X3dhPrefix | null;
}

/** Every session with one peer, JSON-serialisable. Secret. */
export interface PeerSessions {
  active: Session;
  previous: Session[];
  /** X3DH base keys of sessions the peer opened with us (replay guard). */
  usedBaseKeys: string[];
}

/** A parsed envelope. */
interface Envelope {
  version: number;
  prefix: X3dhPrefix | null;
  header: RatchetHeader;
  clear: Uint8Array;
  ciphertext: Uint8Array;
}

/** The clear envelope bytes before the ratchet header: version, flags and any X3DH prefix. */
function encodePrefix(prefix: X3dhPrefix | null): Uint8Array {
  if (prefix === null) return Uint8Array.of(HEADER_ENVELOPE_VERSION, 0);
  // One allocation: version ‖ flags ‖ ik (32) ‖ ek (32) ‖ spkId (u32 BE) [‖ opkId (u32 BE)].
  const out = new Uint8Array(prefix.opkId === null ? 70 : 74);
  out[0] = HEADER_ENVELOPE_VERSION;
  out[1] = FLAG_PREFIX | (prefix.opkId === null ? 0 : FLAG_OPK);
  out.set(bytesOf(prefix.ik, 32), 2);
  out.set(bytesOf(prefix.ek, 32), 34);
  putU32be(out, 66, prefix.spkId);
  if (prefix.opkId !== null) putU32be(out, 70, prefix.opkId);
  return out;
}

function parseEnvelope(bytes: Uint8Array): Envelope {
  const r = new ByteReader(bytes, 'decrypt_failed');
  const version = r.u8();
  if (version !== HEADER_ENVELOPE_VERSION && version !== LEGACY_ENVELOPE_VERSION) throw new BackchannelError('decrypt_failed', 'unknown envelope version');
  const flags = r.u8();
  if ((flags & ~(FLAG_PREFIX | FLAG_OPK)) !== 0 || flags === FLAG_OPK) {
    throw new BackchannelError('decrypt_failed', 'unknown envelope flags');
  }
  let prefix: X3dhPrefix | null = null;
  if (flags & FLAG_PREFIX) {
    const ik = b64(r.take(32));
    const ek = b64(r.take(32));
    const spkId = r.u32();
    const opkId = flags & FLAG_OPK ? r.u32() : null;
    prefix = { ik, ek, spkId, opkId };
  }
  const header = readRatchetHeader(r);
  const clear = bytes.subarray(0, r.position);
  const ciphertext = r.take(r.remaining);
  return { version, prefix, header, clear, ciphertext };
}

/** The envelope AD before the clear envelope bytes. */
function envelopeAd(channel: BytesLike, sender: BytesLike, recipient: BytesLike, clearWithoutHeader: Uint8Array, version = HEADER_ENVELOPE_VERSION): Uint8Array {
  // One allocation: label ‖ version ‖ channel (16) ‖ sender (32) ‖ recipient (32) ‖ clear bytes.
  const at = HEADER_LABEL.length;
  const out = new Uint8Array(at + 1 + 16 + 32 + 32 + clearWithoutHeader.length);
  out.set(HEADER_LABEL, 0);
  out[at] = version;
  out.set(bytesOf(channel, 16, 'channel'), at + 1);
  out.set(bytesOf(sender, 32, 'sender key'), at + 17);
  out.set(bytesOf(recipient, 32, 'recipient key'), at + 49);
  out.set(clearWithoutHeader, at + 81);
  return out;
}

/**
 * Opens a session with `bundle.member` as initiator. `peerSignKey` must come from the verified
 * roster; fails with `prekey_signature_invalid` when the bundle's signed prekey does not verify.
 */
export async function initiateSession(
  self: MemberKeys,
  channel: BytesLike,
  bundle: PrekeyBundle,
  peerSignKey: BytesLike,
  existing?: PeerSessions,
): Promise<PeerSessions> {
  const x = await x3dhInitiate(self, channel, bundle, peerSignKey);
  const session: Session = {
    ratchet: initRatchetInitiator(x.sharedSecret, x.theirRatchetKey),
    baseKey: x.prefix.ek,
    pendingPrefix: x.prefix,
  };
  x.sharedSecret.fill(0);
  return promote(existing, session);
}

function promote(existing: PeerSessions | undefined, session: Session, usedBaseKey?: string): PeerSessions {
  const others = existing ? [existing.active, ...existing.previous].filter((s) => s.baseKey !== session.baseKey) : [];
  const used = existing ? existing.usedBaseKeys : [];
  return {
    active: session,
    previous: others.slice(0, MAX_PREVIOUS_SESSIONS),
    usedBaseKeys: usedBaseKey === undefined ? used : [usedBaseKey, ...used].slice(0, MAX_USED_BASE_KEYS),
  };
}

/** True when a message can be sent to this peer now (else start a session from its bundle). */
export function canSendTo(sessions: PeerSessions | undefined): boolean {
  return sessions !== undefined && sessions.active.ratchet.sendChain !== null;
}

/** Encrypts `payload` to the peer in the active session and returns the envelope bytes. */
export function sessionEncrypt(
  sessions: PeerSessions,
  channel: BytesLike,
  sender: BytesLike,
  recipient: BytesLike,
  payload: Uint8Array,
): { sessions: PeerSessions; envelope: Uint8Array } {
  const s = sessions.active;
  const prefix = encodePrefix(s.pendingPrefix);
  const out = ratchetEncrypt(s.ratchet, payload, envelopeAd(channel, sender, recipient, prefix));
  return {
    sessions: { ...sessions, active: { ...s, ratchet: out.state } },
    envelope: concat(prefix, out.headerBytes, out.ciphertext),
  };
}

/** Result of {@link sessionDecrypt}: new sessions and prekeys to persist, and the payload. */
export interface SessionDecrypted {
  sessions: PeerSessions;
  prekeys: PrekeyState;
  payload: Uint8Array;
}

/**
 * Decrypts an envelope from `sender`. Creates a responder session when it carries an X3DH
 * prefix for a session we do not have yet. Errors: `decrypt_failed` (malformed, unknown prekey,
 * no session and no prefix), `counter_out_of_range`, `integrity_replay`,
 * `integrity_forged_sender` (does not authenticate as `sender` in any session with it).
 */
export async function sessionDecrypt(
  sessions: PeerSessions | undefined,
  self: MemberKeys,
  prekeys: PrekeyState,
  channel: BytesLike,
  sender: string,
  envelope: Uint8Array,
): Promise<SessionDecrypted> {
  const env = parseEnvelope(envelope);
  const ad = envelopeAd(channel, sender, self.dhPublic, env.clear.subarray(0, env.clear.length - 40), env.version);
  const nonceFrom = env.version === LEGACY_ENVELOPE_VERSION ? 'derived' : 'carried';
  if (env.prefix !== null) {
    if (env.prefix.ik !== sender) throw new BackchannelError('integrity_forged_sender', 'prefix names another sender');
    const known = sessions && [sessions.active, ...sessions.previous].find((s) => s.baseKey === env.prefix!.ek);
    if (!known) {
      if (sessions?.usedBaseKeys.includes(env.prefix.ek)) {
        throw new BackchannelError('integrity_replay', 'initial message of a closed session replayed');
      }
      const x = await x3dhRespond(self, prekeys, channel, env.prefix);
      const ratchet = initRatchetResponder(x.sharedSecret, x.ourRatchetKey);
      x.sharedSecret.fill(0);
      const opened = ratchetDecrypt(ratchet, env.header, env.ciphertext, ad, nonceFrom);
      const session: Session = { ratchet: opened.state, baseKey: env.prefix.ek, pendingPrefix: null };
      return { sessions: promote(sessions, session, env.prefix.ek), prekeys: x.prekeys, payload: opened.plaintext };
    }
  }
  if (!sessions) throw new BackchannelError('decrypt_failed', 'no session with this sender');
  const candidates = [sessions.active, ...sessions.previous];
  let firstError: unknown;
  for (const s of candidates) {
    if (env.prefix !== null && s.baseKey !== env.prefix.ek) continue;
    try {
      const opened = ratchetDecrypt(s.ratchet, env.header, env.ciphertext, ad, nonceFrom);
      // Anything received in a session we initiated proves the peer ran its half: stop the prefix.
      const session: Session = { ...s, ratchet: opened.state, pendingPrefix: null };
      return { sessions: promote(sessions, session), prekeys, payload: opened.plaintext };
    } catch (err) {
      firstError ??= err;
    }
  }
  throw firstError instanceof Error ? firstError : new BackchannelError('integrity_forged_sender', 'no session accepts the message');
}

/**
 * Deniability: an envelope that this member's own client accepts as sent by `peer`, made from
 * this member's state alone (see {@link ratchetForgeIncoming}). State is not changed.
 */
export function sessionForgeIncoming(
  sessions: PeerSessions,
  channel: BytesLike,
  peer: string,
  self: string,
  payload: Uint8Array,
): Uint8Array {
  const prefix = encodePrefix(null);
  const forged = ratchetForgeIncoming(sessions.active.ratchet, payload, envelopeAd(channel, peer, self, prefix));
  return concat(prefix, encodeRatchetHeader(forged.header), forged.ciphertext);
}
