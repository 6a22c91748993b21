/**
 * Pairwise sessions between two members of a channel: X3DH to start, the Double Ratchet after,
 * and the envelope that carries one ratchet message on the wire (its bytes: `header-envelope.ts`).
 *
 * The ratchet AEAD's associated data is "backchannel/header/v1" ‖ version ‖ channel (16) ‖
 * sender key (32) ‖ recipient key (32) ‖ the envelope's version, flags and X3DH prefix (slot) ‖
 * the ratchet header — so a header cannot be moved to another channel, another sender or
 * recipient, or stripped of its prefix.
 *
 * An initiator repeats the prefix on every message until the first reply arrives, so any of its
 * first messages can open the session; the prefix travels encrypted under the pair key, inside
 * an envelope of one fixed size, so the relay cannot tell. When both members initiate at once
 * each ends up with two sessions; the one that last received becomes active (as Signal does),
 * and the others stay available to decrypt late messages until {@link MAX_PREVIOUS_SESSIONS}
 * newer ones exist.
 */
import { BackchannelError } from '../protocol/index.js';
import { bytesOf, label, type BytesLike } from './bytes.js';
import {
  initRatchetInitiator,
  initRatchetResponder,
  ratchetDecrypt,
  ratchetEncrypt,
  ratchetForgeIncoming,
  encodeRatchetHeader,
  expireSkippedKeys,
  nextSkippedKeyExpiry,
  type RatchetState,
} from './double-ratchet.js';
import { derivePairKey, envelopeClear, openEnvelope, sealEnvelope } from './header-envelope.js';
import type { MemberKeys } from './member-keys.js';
import { padTo } from './padding.js';
import type { PrekeyState } from './prekeys.js';
import { x3dhInitiate, x3dhRespond, type PrekeyBundle, type X3dhPrefix } from './x3dh.js';

/** Sessions kept besides the active one. */
export const MAX_PREVIOUS_SESSIONS = 4;
/** X3DH ephemeral keys remembered per peer so a replayed initial message cannot open a new session. */
const MAX_USED_BASE_KEYS = 64;
const HEADER_LABEL = label('backchannel/header/v1');
/** Every header payload is padded to this size (the smallest padding bucket), so all envelopes are one size. */
const PADDED_PAYLOAD_BYTES = 320;

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
  /** The pair key that hides envelopes between us (see `header-envelope.ts`); derived when absent. */
  pairKey?: string;
}

/** The envelope AD before the clear envelope bytes. */
function envelopeAd(channel: BytesLike, sender: BytesLike, recipient: BytesLike, clearWithoutHeader: Uint8Array): Uint8Array {
  // One allocation: label ‖ version ‖ channel (16) ‖ sender (32) ‖ recipient (32) ‖ clear bytes.
  const at = HEADER_LABEL.length;
  const out = new Uint8Array(at + 1 + 16 + 32 + 32 + clearWithoutHeader.length);
  out.set(HEADER_LABEL, 0);
  out[at] = clearWithoutHeader[0]!;
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
  return promote(existing, session, existing?.pairKey ?? derivePairKey(self.dhSecret, self.dhPublic, bundle.member, channel));
}

function promote(existing: PeerSessions | undefined, session: Session, pairKey: string, usedBaseKey?: string): PeerSessions {
  const others = existing ? [existing.active, ...existing.previous].filter((s) => s.baseKey !== session.baseKey) : [];
  const used = existing ? existing.usedBaseKeys : [];
  return {
    active: session,
    previous: others.slice(0, MAX_PREVIOUS_SESSIONS),
    usedBaseKeys: usedBaseKey === undefined ? used : [usedBaseKey, ...used].slice(0, MAX_USED_BASE_KEYS),
    pairKey,
  };
}

/** Every session with a peer, skipped keys expired by age as of `now`; `sessions` itself when nothing changed. */
export function expirePeerSkippedKeys(sessions: PeerSessions, now: number): PeerSessions {
  const sweep = (s: Session): Session => {
    const ratchet = expireSkippedKeys(s.ratchet, now);
    return ratchet === s.ratchet ? s : { ...s, ratchet };
  };
  const active = sweep(sessions.active);
  const previous = sessions.previous.map(sweep);
  if (active === sessions.active && previous.every((s, i) => s === sessions.previous[i])) return sessions;
  return { ...sessions, active, previous };
}

/** When the first skipped key of any session with a peer expires by age. */
export function nextPeerSkippedKeyExpiry(sessions: PeerSessions): number | undefined {
  const times = [sessions.active, ...sessions.previous].flatMap((s) => nextSkippedKeyExpiry(s.ratchet) ?? []);
  return times.length === 0 ? undefined : Math.min(...times);
}

/** True when a message can be sent to this peer now (else start a session from its bundle). */
export function canSendTo(sessions: PeerSessions | undefined): boolean {
  return sessions !== undefined && sessions.active.ratchet.sendChain !== null;
}

/**
 * Encrypts `payload` (at most 319 bytes: it is padded to 320) to the peer `recipient` in the
 * active session and returns the envelope bytes; `sender` is `self.dhPublic`, decoded.
 */
export function sessionEncrypt(
  sessions: PeerSessions,
  self: MemberKeys,
  channel: BytesLike,
  sender: BytesLike,
  recipient: string,
  payload: Uint8Array,
): { sessions: PeerSessions; envelope: Uint8Array } {
  const s = sessions.active;
  const pairKey = sessions.pairKey ?? derivePairKey(self.dhSecret, self.dhPublic, recipient, channel);
  const clear = envelopeClear(s.pendingPrefix);
  const padded = padTo(payload, PADDED_PAYLOAD_BYTES);
  const out = ratchetEncrypt(s.ratchet, padded, envelopeAd(channel, sender, recipient, clear));
  padded.fill(0);
  return {
    sessions: { ...sessions, active: { ...s, ratchet: out.state }, pairKey },
    envelope: sealEnvelope(pairKey, { channel, sender, recipient }, clear, out.headerBytes, out.ciphertext),
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
  const pairKey = sessions?.pairKey ?? derivePairKey(self.dhSecret, self.dhPublic, sender, channel);
  const env = openEnvelope(envelope, { channel, sender, recipient: self.dhPublic }, pairKey);
  const ad = envelopeAd(channel, sender, self.dhPublic, env.clear);
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
      const opened = ratchetDecrypt(ratchet, env.header, env.ciphertext, ad, env.nonceFrom);
      const session: Session = { ratchet: opened.state, baseKey: env.prefix.ek, pendingPrefix: null };
      return { sessions: promote(sessions, session, pairKey, env.prefix.ek), prekeys: x.prekeys, payload: env.unpad(opened.plaintext) };
    }
  }
  if (!sessions) throw new BackchannelError('decrypt_failed', 'no session with this sender');
  const candidates = [sessions.active, ...sessions.previous];
  let firstError: unknown;
  for (const s of candidates) {
    if (env.prefix !== null && s.baseKey !== env.prefix.ek) continue;
    try {
      const opened = ratchetDecrypt(s.ratchet, env.header, env.ciphertext, ad, env.nonceFrom);
      // Anything received in a session we initiated proves the peer ran its half: stop the prefix.
      const session: Session = { ...s, ratchet: opened.state, pendingPrefix: null };
      return { sessions: promote(sessions, session, pairKey), prekeys, payload: env.unpad(opened.plaintext) };
    } catch (err) {
      firstError ??= err;
    }
  }
  throw firstError instanceof Error ? firstError : new BackchannelError('integrity_forged_sender', 'no session accepts the message');
}

/**
 * Deniability: an envelope that this member's own client accepts as sent by `peer`, made from
 * this member's state alone (see {@link ratchetForgeIncoming}; the pair key is symmetric). State
 * is not changed.
 */
export function sessionForgeIncoming(
  sessions: PeerSessions,
  self: MemberKeys,
  channel: BytesLike,
  peer: string,
  payload: Uint8Array,
): Uint8Array {
  const pairKey = sessions.pairKey ?? derivePairKey(self.dhSecret, self.dhPublic, peer, channel);
  const clear = envelopeClear(null);
  const forged = ratchetForgeIncoming(sessions.active.ratchet, padTo(payload, PADDED_PAYLOAD_BYTES), envelopeAd(channel, peer, self.dhPublic, clear));
  return sealEnvelope(pairKey, { channel, sender: peer, recipient: self.dhPublic }, clear, encodeRatchetHeader(forged.header), forged.ciphertext);
}
