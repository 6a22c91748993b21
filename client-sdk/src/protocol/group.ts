import { z } from 'zod';
import { ChannelId, Hash32, MemberKey, RequestId, SignKey, Signature, Timestamp } from './fields.js';
import { Charter } from './charter.js';
import { LIMITS } from './limits.js';

/**
 * The group log: a channel's membership, roles and charter as a hash-chained log of signed
 * changes. The relay stores and serves it; it cannot write to it, since every change carries the
 * signatures the state it builds on requires. Clients verify every change themselves
 * (`client-sdk/src/group/group-log.ts`).
 */

/** A role a change can give: the host is fixed by the genesis. */
export const SeatRole = z.enum(['party', 'observer']);

/**
 * An invitation as the host issued it: the public half of a key pair derived from the link's
 * secret, the role it admits, its expiry, and the host's signature over all three.
 */
export const InviteGrant = z.strictObject({
  key: SignKey,
  role: SeatRole,
  expiresAt: Timestamp,
  sig: Signature,
});

/** A member as it redeemed an invitation: its keys, signed by the invitation's key (`proof`). */
export const Seat = z.strictObject({
  key: MemberKey,
  signKey: SignKey,
  role: SeatRole,
  invite: InviteGrant,
  proof: Signature,
});

/** The host's keys, fixed by the genesis. */
export const HostKeys = z.strictObject({ key: MemberKey, signKey: SignKey });

/** One change of a channel's group state. */
export const GroupChange = z.discriminatedUnion('kind', [
  /**
   * The first entry, signed by the host: its hash is the channel's fingerprint. `relayKey` pins
   * the relay's record-signing key at convening: later keys are valid only through hand-overs
   * that key signed (without it, observers must pin the relay's keys themselves).
   */
  z.strictObject({ kind: z.literal('genesis'), channel: ChannelId, host: HostKeys, charter: Charter, relayKey: SignKey.optional() }),
  /** The founding parties (two or more), each signed by every one of them. */
  z.strictObject({ kind: z.literal('found'), members: z.array(Seat).min(2).max(LIMITS.maxMembers) }),
  /** A new member, signed by every party. */
  z.strictObject({ kind: z.literal('add'), member: Seat }),
  /** A removal, signed by every other party (or by the host alone where the charter allows). */
  z.strictObject({ kind: z.literal('remove'), member: MemberKey }),
  /** A member leaves, signed by itself. */
  z.strictObject({ kind: z.literal('leave'), member: MemberKey }),
  /** A new role for a member, signed by every party. */
  z.strictObject({ kind: z.literal('role'), member: MemberKey, role: SeatRole }),
  /** A charter amendment, signed by every party. */
  z.strictObject({ kind: z.literal('charter'), charter: Charter }),
  /** The end of the channel, signed by any one party. */
  z.strictObject({ kind: z.literal('dissolve') }),
]);

/** A change as proposed: the epoch it creates and the hash of the state it builds on. */
export const GroupProposal = z.strictObject({
  epoch: z.number().int().min(0).max(0xffff_ffff),
  prev: Hash32,
  change: GroupChange,
});

/** One signature over a proposal's statement, by a member's per-channel sign key. */
export const GroupSignature = z.strictObject({ by: MemberKey, sig: Signature });

/** A change as the log holds it: the proposal and the signatures it needs. */
export const GroupEntry = z.strictObject({
  epoch: GroupProposal.shape.epoch,
  prev: Hash32,
  change: GroupChange,
  sigs: z.array(GroupSignature).max(LIMITS.maxMembers + 1),
});

/** Most entries one `group` frame carries; a client asks again from the last for more. */
export const MAX_GROUP_ENTRIES_PER_FRAME = 64;

/** Asks for the group log from `from` (inclusive; 0 is the genesis), and the pending members. */
export const GroupGetFrame = z.strictObject({
  type: z.literal('group.get'),
  rid: RequestId,
  channel: ChannelId,
  from: z.number().int().min(0).max(0xffff_ffff),
});

/**
 * Signs a proposed change. The relay keeps the signatures until the proposal carries every one
 * the current state requires, then appends it to the log; a proposal built on another state is
 * refused (`group_stale`).
 */
export const GroupSignFrame = z.strictObject({
  type: z.literal('group.sign'),
  rid: RequestId,
  channel: ChannelId,
  proposal: GroupProposal,
  sig: Signature,
});

/**
 * Part of the group log, the head the relay holds, and the members waiting for approval. Pushed
 * (without `rid`) after every change. Clients verify every entry and every pending member's
 * invitation; nothing here is believed because the relay sent it.
 */
export const GroupFrame = z.strictObject({
  type: z.literal('group'),
  rid: RequestId.optional(),
  channel: ChannelId,
  head: z.number().int().min(0).max(0xffff_ffff),
  entries: z.array(GroupEntry).max(MAX_GROUP_ENTRIES_PER_FRAME),
  pending: z.array(Seat).max(LIMITS.maxMembers * 4),
});

/** A change of the group log. */
export type GroupChange = z.infer<typeof GroupChange>;
/** A proposed change. */
export type GroupProposal = z.infer<typeof GroupProposal>;
/** An entry of the group log. */
export type GroupEntry = z.infer<typeof GroupEntry>;
/** A redeemed invitation: a member's keys and the invitation that admits it. */
export type Seat = z.infer<typeof Seat>;
/** An invitation the host signed. */
export type InviteGrant = z.infer<typeof InviteGrant>;
