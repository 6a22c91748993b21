import type { GroupState } from '../crypto/group-state.js';
import type { SealedGroupMessage } from '../crypto/group-message.js';
import type { GroupLogState } from '../group/group-log.js';
import type { KeyStore } from '../keystore/key-store.js';
import { BackchannelError } from '../protocol/index.js';
import type { SeqWindow } from '../crypto/seq-window.js';
import type { Draft } from './content.js';

/** A draft with the member who wrote it. */
export type AuthoredDraft = Draft & { readonly author: string };

/** What a client remembers of each verified epoch: enough to accept a message sent at it. */
export interface EpochRecord {
  stateHash: string;
  parties: string[];
}

/** Changes this member asked for and keeps signing, on every new state, until they land. */
export interface Intents {
  /** Pending members this member approved: member key → the sign key it approved. */
  approve: Record<string, string>;
  /** Members this member voted to remove. */
  remove: string[];
}

/** Everything a member keeps about one channel. Secret; saved whole, atomically, after every change. */
export interface ChannelRecord {
  v: 2;
  relay: string;
  channel: string;
  /** The role the invitation (or convening) gave; the verified group state decides once admitted. */
  role: 'host' | 'party' | 'observer';
  /** Keys, prekey secrets, sessions, counters, receipts (the crypto layer's state). */
  group: GroupState;
  /** The group state this client verified from the signed log: who gets keys, the charter. */
  log: GroupLogState;
  /** Every verified epoch's state hash and parties, by epoch. */
  epochs: Record<number, EpochRecord>;
  /** The state the invitation was issued at: the log must pass through it. */
  anchor: { epoch: number; stateHash: string };
  intents: Intents;
  /** Members whose fingerprint the user confirmed: member key → sign key at that time. */
  verified: Record<string, string>;
  /** The last channel sequence fully processed (resume point). */
  lastSeq: number;
  /** Sealed messages not yet acked by the relay, re-sent after a restart (idempotent by id). */
  outbox: Record<string, SealedGroupMessage>;
  /** Key that opens the charter's purpose text (from the invitation; the relay never has it). */
  purposeKey: string | null;
  /** Disclosure drafts read or written in the channel, by proposal id, with their author (the first one wins). */
  drafts?: Record<string, AuthoredDraft>;
  /** Proposals this member vetoed: it never co-signs a formal log holding one of them. */
  vetoed?: string[];
  /** Who sent each recent channel message this member processed (its own included), by sequence. */
  authors?: SeqWindow;
}

/** The store key of a channel's record. */
export function recordKey(channel: string): string {
  return `backchannel/channel/${channel}`;
}

/**
 * Loads a channel's record, if any. A record made before the group log (v1) cannot be upgraded —
 * its channel has no signed log to verify, and its sessions speak the version-1 envelope — and
 * fails `channel_legacy`.
 */
export async function loadRecord(store: KeyStore, channel: string): Promise<ChannelRecord | undefined> {
  const stored = (await store.get(recordKey(channel))) as (Omit<ChannelRecord, 'v'> & { v: number }) | undefined;
  if (stored === undefined) return undefined;
  if (stored.v !== 2) throw new BackchannelError('channel_legacy', 'this channel was made before the verifiable group log; convene a new one');
  return { ...stored, v: 2 };
}

/** Saves a channel's record (one atomic write). */
export async function saveRecord(store: KeyStore, record: ChannelRecord): Promise<void> {
  await store.batch([{ type: 'put', key: recordKey(record.channel), value: record }]);
}
