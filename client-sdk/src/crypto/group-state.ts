/**
 * The whole cryptographic state of one member in one channel, as one JSON-serialisable object:
 * keys, prekey secrets, pairwise sessions, the member's own sender counter and transcript, what
 * it has seen from every other sender, and the receipt chain values it knows. Persist it (in one
 * key-store transaction) every time a function returns a new one, before using the result.
 *
 * No function modifies the state it is given: a new state shares the parts it did not change
 * (other peers' sessions, most runs of the receipt windows) with the old one, and since nothing
 * is ever written in place, the old state stays valid — a failed open leaves it usable, and an
 * unsaved result can simply be dropped. Treat states as immutable too.
 */
import { RECEIPT_CHAIN_GENESIS, nextReceiptChain } from './receipt-chain.js';
import { b64, bytesOf } from './bytes.js';
import type { MemberKeys } from './member-keys.js';
import { createPrekeyState, type PrekeyState } from './prekeys.js';
import { expirePeerSkippedKeys, nextPeerSkippedKeyExpiry, type PeerSessions } from './session.js';
import type { ReceiptRef } from './group-payload.js';
import { windowGet, windowSet, type SeqWindow } from './seq-window.js';

/** Receipt chain values (and delivered commitments) remembered, newest kept. */
export const MAX_REMEMBERED_RECEIPTS = 4096;
/** Missing counters tracked per sender; beyond that a gap is still reported, not tracked. */
export const MAX_TRACKED_MISSING = 1000;

/** What a recipient knows of one sender's stream. */
export interface SenderTrack {
  /** The next counter expected in order. */
  next: number;
  /** T_{next-1} as the sender claimed it, or null when unknown. */
  transcript: string | null;
  /** Counters skipped over (a gap) and not yet seen, ascending. */
  missing: number[];
}

/**
 * One member's cryptographic state in one channel. Secret; JSON-serialisable. (States of the
 * version-1 protocol are not upgraded: their channels have no signed group log; see
 * `loadRecord`.)
 */
export interface GroupState {
  version: 2;
  /** Channel id (base64url, 16 bytes). */
  channel: string;
  self: MemberKeys;
  prekeys: PrekeyState;
  /** Pairwise sessions by peer member key. */
  sessions: Record<string, PeerSessions>;
  /** Our own sender stream: last counter used (0 before the first message) and T_counter. */
  outgoing: { counter: number; transcript: string };
  /** Every other sender's stream, by member key. */
  incoming: Record<string, SenderTrack>;
  /**
   * Receipt chain value by relay sequence, as delivered, acknowledged, or quoted by a sender: the
   * {@link MAX_REMEMBERED_RECEIPTS} highest sequences.
   */
  receipts: SeqWindow;
  /**
   * Commitment of each delivered sequence, to tell a harmless re-delivery from a replay: the
   * {@link MAX_REMEMBERED_RECEIPTS} highest sequences.
   */
  delivered: SeqWindow;
  /** The newest receipt this member knows: quoted in its next message. */
  lastReceipt: ReceiptRef | null;
  /**
   * When true, the first message seen from a sender sets the baseline counter without a gap
   * alarm — for members admitted after the channel started. Founding members keep it false so a
   * dropped first message is still detected.
   */
  adoptNewSenders: boolean;
}

/** Creates the state of a member in a channel. */
export function createGroupState(options: {
  channel: string;
  self: MemberKeys;
  prekeys?: PrekeyState;
  adoptNewSenders?: boolean;
}): GroupState {
  bytesOf(options.channel, 16, 'channel');
  return {
    version: 2,
    channel: options.channel,
    self: options.self,
    prekeys: options.prekeys ?? createPrekeyState(),
    sessions: {},
    outgoing: { counter: 0, transcript: b64(new Uint8Array(32)) },
    incoming: {},
    receipts: [],
    delivered: [],
    lastReceipt: null,
    adoptNewSenders: options.adoptNewSenders ?? false,
  };
}

/** Result of {@link recordReceipt}. `fork` is true when the value contradicts one already known. */
export interface ReceiptRecorded {
  state: GroupState;
  fork: boolean;
}

/**
 * Records a receipt-chain value: from a `sent` ack of our own message, a delivery, or a value a
 * sender quoted. A value that differs from one already recorded for the same sequence — or, when
 * `link` is given and the previous value is known, that does not extend it — means the relay
 * has shown different histories: `fork` is true and the earlier value is kept.
 * Call after `sodiumReady()`.
 */
export function recordReceipt(
  state: GroupState,
  seq: number,
  chain: string,
  link?: { commitment: string; receivedAt: number },
): ReceiptRecorded {
  const known = windowGet(state.receipts, seq);
  let fork = known !== undefined && known !== chain;
  if (!fork && link !== undefined) {
    const prev = seq === 1 ? b64(RECEIPT_CHAIN_GENESIS) : windowGet(state.receipts, seq - 1);
    if (prev !== undefined) {
      const expected = nextReceiptChain(bytesOf(prev, 32), seq, bytesOf(link.commitment, 32), link.receivedAt);
      fork = b64(expected) !== chain;
    }
  }
  if (fork) return { state, fork };
  const receipts = known === undefined ? windowSet(state.receipts, seq, chain, MAX_REMEMBERED_RECEIPTS) : state.receipts;
  const lastReceipt = state.lastReceipt === null || seq > state.lastReceipt.seq ? { seq, chain } : state.lastReceipt;
  return { state: { ...state, receipts, lastReceipt }, fork };
}

/**
 * Drops the pairwise sessions with a peer (e.g. after it left or was removed), so nothing more is
 * encrypted to it. Its sender track is kept, so its old messages still cannot be replayed.
 */
export function forgetPeer(state: GroupState, peer: string): GroupState {
  const sessions = { ...state.sessions };
  delete sessions[peer];
  return { ...state, sessions };
}

/**
 * Expires, by age as of `now`, the skipped message keys of every pairwise session (see
 * `expireSkippedKeys` in `double-ratchet.ts`); `state` itself when nothing changed.
 */
export function expireSkippedKeysByAge(state: GroupState, now: number): GroupState {
  let sessions: Record<string, PeerSessions> | undefined;
  for (const [peer, peerSessions] of Object.entries(state.sessions)) {
    const swept = expirePeerSkippedKeys(peerSessions, now);
    if (swept !== peerSessions) (sessions ??= { ...state.sessions })[peer] = swept;
  }
  return sessions === undefined ? state : { ...state, sessions };
}

/** When the first skipped message key of any session expires by age (undefined when none is kept). */
export function nextSkippedKeyDeadline(state: GroupState): number | undefined {
  const times = Object.values(state.sessions).flatMap((p) => nextPeerSkippedKeyExpiry(p) ?? []);
  return times.length === 0 ? undefined : Math.min(...times);
}

/** @internal Remembers the commitment delivered at `seq`, replacing any earlier one. */
export function rememberDelivered(state: GroupState, seq: number, commitment: string): GroupState {
  return { ...state, delivered: windowSet(state.delivered, seq, commitment, MAX_REMEMBERED_RECEIPTS) };
}
