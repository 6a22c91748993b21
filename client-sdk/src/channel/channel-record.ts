import { upgradeGroupState, type GroupState, type GroupStateV1 } from '../crypto/group-state.js';
import type { SealedGroupMessage } from '../crypto/group-message.js';
import type { KeyStore } from '../keystore/key-store.js';
import type { Charter } from '../protocol/index.js';
import type { TrustState } from './roster-trust.js';
import type { Draft } from './content.js';

/** Everything a member keeps about one channel. Secret; saved whole, atomically, after every change. */
export interface ChannelRecord {
  v: 1;
  relay: string;
  channel: string;
  role: 'host' | 'party' | 'observer';
  /** Keys, prekey secrets, sessions, counters, receipts (the crypto layer's state). */
  group: GroupState;
  trust: TrustState;
  /** Members whose safety number the user confirmed: member key → sign key at that time. */
  verified: Record<string, string>;
  /** The last channel sequence fully processed (resume point). */
  lastSeq: number;
  /** Sealed messages not yet acked by the relay, re-sent after a restart (idempotent by id). */
  outbox: Record<string, SealedGroupMessage>;
  /** Key that opens the charter's purpose text (from the invitation; the relay never has it). */
  purposeKey: string | null;
  charter: Charter | null;
  /** Disclosure drafts read or written in the channel, by proposal id. */
  drafts?: Record<string, Draft>;
}

/** The store key of a channel's record. */
export function recordKey(channel: string): string {
  return `backchannel/channel/${channel}`;
}

/** A record as an older SDK may have saved it: its group state not yet upgraded. */
type StoredChannelRecord = Omit<ChannelRecord, 'group'> & { group: GroupState | GroupStateV1 };

/** Loads a channel's record, if any, upgraded to the current group state version. */
export async function loadRecord(store: KeyStore, channel: string): Promise<ChannelRecord | undefined> {
  const stored = (await store.get(recordKey(channel))) as StoredChannelRecord | undefined;
  return stored && { ...stored, group: upgradeGroupState(stored.group) };
}

/** Saves a channel's record (one atomic write). */
export async function saveRecord(store: KeyStore, record: ChannelRecord): Promise<void> {
  await store.batch([{ type: 'put', key: recordKey(record.channel), value: record }]);
}
