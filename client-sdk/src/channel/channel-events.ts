/** What a {@link ChannelClient} hands the application: its events, messages, alarms and views. */
import type { Charter, ErrorCode } from '../protocol/index.js';
import type { StateChange } from '../transport/state.js';
import type { MessageContent } from './content.js';
import type { DisclosureState } from './disclosure-desk.js';
import type { PendingMember } from './group-sync.js';

/** A message the application receives: authenticated as from `from`, and seen once only. */
export interface ChannelMessage {
  readonly from: string;
  readonly content: MessageContent;
  readonly seq: number;
  readonly receivedAt: number;
  readonly clientMsgId: string;
  /** k_f: open this message in a disclosure excerpt with it. Keep it secret until then. */
  readonly frankingKey: string;
  /** The exact plaintext bytes (base64url) the commitment covers: with `frankingKey`, an excerpt opening. */
  readonly plaintext: string;
  /** When the charter sets disappearing messages: delete the message after this time. */
  readonly expiresAt: number | null;
}

/**
 * Something the SDK refused or found suspicious. Never silently accepted: a tampered, forged,
 * replayed, dropped or reordered message, a forked history, a member nobody approved.
 */
export interface ChannelAlarm {
  readonly code: ErrorCode;
  readonly message: string;
  readonly member?: string;
  readonly seq?: number;
}

/** The verified group state as the application sees it. */
export interface GroupView {
  readonly epoch: number;
  readonly stateHash: string;
  /** The channel's fingerprint: compare it out of band; observers pin it. */
  readonly fingerprint: string;
  readonly dissolved: boolean;
  readonly charter: Charter;
  /** Members of the verified state (the host included), each with whether the user confirmed its fingerprint. */
  readonly members: readonly { readonly key: string; readonly signKey: string; readonly role: 'host' | 'party' | 'observer'; readonly verified: boolean }[];
  /** Members waiting for admission whose invitation verified, with their fingerprints. */
  readonly pending: readonly PendingMember[];
}

/** Events of a {@link ChannelClient}. */
export interface ChannelEvents {
  message: ChannelMessage;
  alarm: ChannelAlarm;
  /** The verified group state changed (or pending members did). */
  group: GroupView;
  /** A member awaits this party's approval: compare its fingerprint with the invitee's, then `approve`. */
  pending: PendingMember;
  /** Messages of ours the relay purged (retention) before every recipient had them. */
  expired: readonly string[];
  /** Our membership ended (left, removed, or the channel was dissolved), as the verified log says; local state is gone if dissolved. */
  ended: 'left' | 'removed' | 'dissolved';
  state: StateChange;
  /** A disclosure proposal changed stage (pushed by the relay). */
  disclosure: DisclosureState;
}

/** What a send returns once the relay has durably stored the message. */
export interface Sent {
  readonly seq: number;
  readonly clientMsgId: string;
  readonly receivedAt: number;
  /** With `plaintext`, opens this message in a disclosure excerpt. */
  readonly frankingKey: string;
  readonly plaintext: string;
}
