import { z } from 'zod';
import { concat, label, lp, u32be, u64be } from '../crypto/bytes.js';
import { ChannelId, GroupEntry, Hash32, MAX_EXCERPT_ITEMS, ProposalId, Seq, SignKey, Signature, Timestamp, bytesField, fromBase64Url, utf8 } from '../protocol/index.js';
import { sodium } from '../sodium.js';

/** An excerpt item as the formal record holds it: opened (with its commitment) or withheld (with none). */
export const RecordItem = z.union([
  z.strictObject({
    seq: Seq,
    receivedAt: Timestamp,
    opened: z.strictObject({ plaintext: bytesField(32 * 1024), frankingKey: Hash32, commitment: Hash32 }),
  }),
  // No commitment for a withheld message: a later leak of it cannot be checked against the record.
  z.strictObject({ seq: Seq, receivedAt: Timestamp, withheld: z.literal(true) }),
]);

/**
 * A formal record: one published disclosure, hash-chained and signed by the relay, anchored in
 * the channel's group log: its parties are the parties of the group state at `epoch` (whose
 * hash is `stateHash`), and each of them signed a consent in that state.
 */
export const FormalRecord = z.strictObject({
  v: z.literal(2),
  channel: ChannelId,
  index: z.number().int().min(0),
  /** Hash of the previous record (32 zero bytes for the first). */
  prev: Hash32,
  proposalId: ProposalId,
  kind: z.enum(['communique', 'excerpt']),
  /** The communiqué text (communiqués only). */
  text: z.string().max(16_000).optional(),
  /** The excerpt's items (excerpts only). */
  items: z.array(RecordItem).max(MAX_EXCERPT_ITEMS).optional(),
  contentHash: Hash32,
  rangeFrom: Seq,
  rangeTo: Seq,
  releaseAt: Timestamp,
  publishedAt: Timestamp,
  /** The group state the parties consented in. */
  epoch: z.number().int().min(0).max(0xffff_ffff),
  stateHash: Hash32,
  /** Sign keys of every party of that state, sorted: each must have consented. */
  parties: z.array(SignKey).min(1).max(32),
  consents: z.array(z.strictObject({ signKey: SignKey, sig: Signature })).min(1).max(32),
  relayKey: SignKey,
  hash: Hash32,
  sig: Signature,
});

/** A formal record. */
export type FormalRecord = z.infer<typeof FormalRecord>;
/** A formal record before the relay hashes and signs it. */
export type UnsignedRecord = Omit<FormalRecord, 'hash' | 'sig'>;

/** A party's co-signature of the log's head it verified (see `formal.checkpoint`). */
export const Checkpoint = z.strictObject({
  index: z.number().int().min(0).max(0xffff_ffff),
  hash: Hash32,
  epoch: z.number().int().min(0).max(0xffff_ffff),
  stateHash: Hash32,
  signKey: SignKey,
  sig: Signature,
});

/** A checkpoint. */
export type Checkpoint = z.infer<typeof Checkpoint>;

/** One relay record key, oldest first, with the retiring key's hand-over to it (none for the first). */
export const RelayKeyLink = z.strictObject({
  key: SignKey,
  handover: z.strictObject({ from: SignKey, validFrom: Timestamp, sig: Signature }).nullable(),
});

/** A relay record key with its hand-over. */
export type RelayKeyLink = z.infer<typeof RelayKeyLink>;

/** A channel's formal log as served over HTTP. */
export const FormalLog = z.strictObject({
  channel: ChannelId,
  records: z.array(FormalRecord),
  /** The channel's group log from its genesis: proves who the parties were at each record. */
  group: z.array(GroupEntry).max(100_000),
  /** The relay's record keys, oldest first, each handed over by the one before. */
  relayKeyChain: z.array(RelayKeyLink).max(10_000),
  /** The parties' co-signatures of log heads they verified. */
  checkpoints: z.array(Checkpoint).max(100_000),
  /** The relay's record keys, newest first (older ones stay valid for older records). */
  relayKeys: z.array(SignKey).min(1),
});

/** A formal log. */
export type FormalLog = z.infer<typeof FormalLog>;

const RECORD_LABEL = label('backchannel/record/v2');
const b = (text: string): Uint8Array => fromBase64Url(text) ?? new Uint8Array();

/**
 * The record hash: BLAKE2b-256 over every field but `hash` and `sig`, length-prefixed where
 * variable. The content enters through `contentHash` (which verifiers recompute from the text or
 * items), and each item's sequence, receipt time and commitment directly.
 */
export function recordHash(r: UnsignedRecord): Uint8Array {
  const items = r.items ?? [];
  const parts: Uint8Array[] = [
    RECORD_LABEL,
    b(r.channel),
    u64be(r.index),
    b(r.prev),
    lp(b(r.proposalId)),
    lp(utf8(r.kind)),
    b(r.contentHash),
    u64be(r.rangeFrom),
    u64be(r.rangeTo),
    u64be(r.releaseAt),
    u64be(r.publishedAt),
    u64be(r.epoch),
    b(r.stateHash),
    u32be(items.length),
  ];
  for (const item of items) {
    parts.push(u64be(item.seq), u64be(item.receivedAt));
    parts.push('opened' in item ? concat(new Uint8Array([1]), b(item.opened.commitment)) : new Uint8Array([0]));
  }
  parts.push(u32be(r.parties.length), ...r.parties.map(b));
  parts.push(u32be(r.consents.length));
  for (const c of r.consents) parts.push(b(c.signKey), b(c.sig));
  parts.push(b(r.relayKey));
  return sodium.crypto_generichash(32, concat(...parts), null);
}
