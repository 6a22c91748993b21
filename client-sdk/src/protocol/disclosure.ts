import { z } from 'zod';
import { ChannelId, Hash32, MemberKey, RequestId, Seq, SignKey, Signature, Timestamp, bytesField, fixedBytesField } from './fields.js';

/** A disclosure proposal's id, chosen by its proposer: 16 random bytes. */
export const ProposalId = fixedBytesField(16);
/** The two kinds of disclosure. */
export const DisclosureKind = z.enum(['communique', 'excerpt']);
/** Stages of a disclosure. `scheduled`: consented and submitted, held until its release time. */
export const DisclosureStage = z.enum(['proposed', 'consented', 'scheduled', 'published', 'vetoed', 'withdrawn']);

/** Longest communiqué text, in characters. */
export const MAX_COMMUNIQUE_CHARS = 16_000;
/** Most items of one excerpt. */
export const MAX_EXCERPT_ITEMS = 256;

/** One message of an excerpt: opened (plaintext and franking key) or withheld. */
export const ExcerptItem = z.union([
  z.strictObject({ seq: Seq, opened: z.strictObject({ plaintext: bytesField(32 * 1024), frankingKey: Hash32 }) }),
  z.strictObject({ seq: Seq, withheld: z.literal(true) }),
]);

/** What is disclosed: a communiqué's text, or an excerpt's items. */
export const DisclosureContent = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('communique'), text: z.string().min(1).max(MAX_COMMUNIQUE_CHARS) }),
  z.strictObject({ kind: z.literal('excerpt'), items: z.array(ExcerptItem).min(1).max(MAX_EXCERPT_ITEMS) }),
]);

/** The relay learns an id and a content hash, never the content, until publication. */
export const ProposeFrame = z.strictObject({
  type: z.literal('disclosure.propose'),
  rid: RequestId,
  channel: ChannelId,
  proposalId: ProposalId,
  kind: DisclosureKind,
  contentHash: Hash32,
  /** First and last sequence of an excerpt (both 0 for a communiqué). */
  rangeFrom: Seq,
  rangeTo: Seq,
  /** Earliest publication time, ms since the epoch (0: none). */
  releaseAt: Timestamp,
});

/** A party's consent: its signature over the consent statement. */
export const ConsentFrame = z.strictObject({
  type: z.literal('disclosure.consent'),
  rid: RequestId,
  channel: ChannelId,
  proposalId: ProposalId,
  sig: Signature,
});

/** Any party stops a disclosure before it is published. */
export const VetoFrame = z.strictObject({
  type: z.literal('disclosure.veto'),
  rid: RequestId,
  channel: ChannelId,
  proposalId: ProposalId,
});

/** The proposer takes its proposal back before it is published. */
export const WithdrawFrame = z.strictObject({
  type: z.literal('disclosure.withdraw'),
  rid: RequestId,
  channel: ChannelId,
  proposalId: ProposalId,
});

/** The proposer or the host submits the content of a consented disclosure for publication. */
export const PublishFrame = z.strictObject({
  type: z.literal('disclosure.publish'),
  rid: RequestId,
  channel: ChannelId,
  proposalId: ProposalId,
  content: DisclosureContent,
});

/** Reads a proposal's state. */
export const DisclosureGetFrame = z.strictObject({
  type: z.literal('disclosure.get'),
  rid: RequestId,
  channel: ChannelId,
  proposalId: ProposalId,
});

/** A proposal as the relay holds it: the answer to `disclosure.get`, and pushed on every stage change. */
export const DisclosureFrame = z.strictObject({
  type: z.literal('disclosure'),
  rid: RequestId.optional(),
  channel: ChannelId,
  proposalId: ProposalId,
  kind: DisclosureKind,
  contentHash: Hash32,
  rangeFrom: Seq,
  rangeTo: Seq,
  releaseAt: Timestamp,
  stage: DisclosureStage,
  proposer: MemberKey,
  consents: z.array(z.strictObject({ by: MemberKey, signKey: SignKey, sig: Signature })).max(32),
  /** Index of its formal record, once published. */
  recordIndex: z.number().int().min(0).nullable(),
});

/**
 * A party co-signs the formal log's head it verified: (index, hash) of its last record, in the
 * party's verified group state. Observers count these: a head every party co-signed is the one
 * history the parties saw, and a party never co-signs a log holding a record it vetoed.
 */
export const CheckpointFrame = z.strictObject({
  type: z.literal('formal.checkpoint'),
  rid: RequestId,
  channel: ChannelId,
  index: z.number().int().min(0).max(0xffff_ffff),
  hash: Hash32,
  epoch: z.number().int().min(0).max(0xffff_ffff),
  stateHash: Hash32,
  sig: Signature,
});

/** Disclosure frames, client → relay. */
export const DISCLOSURE_CLIENT_FRAMES = [ProposeFrame, ConsentFrame, VetoFrame, WithdrawFrame, PublishFrame, DisclosureGetFrame, CheckpointFrame] as const;

/** Content of a disclosure. */
export type DisclosureContent = z.infer<typeof DisclosureContent>;
/** One excerpt item. */
export type ExcerptItem = z.infer<typeof ExcerptItem>;
/** A disclosure stage. */
export type DisclosureStage = z.infer<typeof DisclosureStage>;
