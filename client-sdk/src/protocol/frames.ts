import { z } from 'zod';
import { ERROR_CODES } from './errors.js';
import {
  ChannelId,
  ClientMessageId,
  Hash32,
  MemberKey,
  MemberStatus,
  RequestId,
  Role,
  Seq,
  SignKey,
  Signature,
  Timestamp,
  bytesField,
} from './fields.js';
import { LIMITS } from './limits.js';
import { DISCLOSURE_CLIENT_FRAMES, DisclosureFrame } from './disclosure.js';

// ---------------------------------------------------------------------------------------------
// Shared shapes
// ---------------------------------------------------------------------------------------------

/** A signed prekey: an X25519 key signed by the member's per-channel sign key. */
export const SignedPrekey = z.strictObject({
  id: z.number().int().min(0).max(0xffff_ffff),
  key: MemberKey,
  sig: Signature,
});

/** A one-time prekey, handed out by the relay at most once. */
export const OneTimePrekey = z.strictObject({
  id: z.number().int().min(0).max(0xffff_ffff),
  key: MemberKey,
});

/** A channel's charter, fixed at convening and changed only with every party's approval. */
export const Charter = z.strictObject({
  /** Purpose text, encrypted by the parties; opaque to the relay. */
  purpose: bytesField(LIMITS.maxPurposeBytes),
  /** Most members (host and observers included) the channel may hold. */
  memberCap: z.number().int().min(2).max(LIMITS.maxMembers).default(8),
  /** How long the relay keeps ciphertext, in seconds (default 7 days). */
  retentionSec: z.number().int().min(60).max(366 * 86_400).default(7 * 86_400),
  /** Client-side disappearing-message time in seconds, or null for none. */
  disappearSec: z.number().int().min(1).max(366 * 86_400).nullable().default(null),
  /** Who must consent before a disclosure is published. */
  disclosureRule: z.enum(['unanimous']).default('unanimous'),
  /** Whether the host may remove a member without every other party. */
  hostMayRemove: z.boolean().default(false),
});

/** One signed approval of a member by a party. */
export const Approval = z.strictObject({
  by: MemberKey,
  sig: Signature,
});

/** A member as the roster shows it. */
export const RosterMember = z.strictObject({
  key: MemberKey,
  signKey: SignKey,
  role: Role,
  status: MemberStatus,
  /** Roster version at which the member became pending: approvals sign over it. */
  sinceVersion: z.number().int().min(0),
  approvals: z.array(Approval).max(LIMITS.maxMembers),
});

// ---------------------------------------------------------------------------------------------
// Client → relay
// ---------------------------------------------------------------------------------------------

/** Sends one message: one body for all, one opaque header per recipient. */
export const SendFrame = z.strictObject({
  type: z.literal('send'),
  rid: RequestId,
  channel: ChannelId,
  clientMsgId: ClientMessageId,
  headers: z
    .record(MemberKey, bytesField(LIMITS.maxHeaderBytes))
    .refine((h) => {
      const n = Object.keys(h).length;
      return n >= 1 && n <= LIMITS.maxMembers;
    }, 'between 1 and maxMembers recipients'),
  body: bytesField(LIMITS.maxBodyBytes),
  /** Franking commitment to the plaintext; the relay timestamps it without learning the sender's text. */
  commitment: Hash32,
});

/** Acknowledges every delivered message of the channel up to and including `seq`. */
export const AckFrame = z.strictObject({
  type: z.literal('ack'),
  channel: ChannelId,
  seq: Seq,
});

/** Starts delivery of a channel's messages after `after` (the last sequence the client processed). */
export const SubscribeFrame = z.strictObject({
  type: z.literal('subscribe'),
  rid: RequestId,
  channel: ChannelId,
  after: Seq,
});

/** Publishes the caller's signed prekey and a batch of one-time prekeys. */
export const PrekeysPublishFrame = z.strictObject({
  type: z.literal('prekeys.publish'),
  rid: RequestId,
  channel: ChannelId,
  signedPrekey: SignedPrekey,
  oneTimePrekeys: z.array(OneTimePrekey).max(LIMITS.maxOneTimePrekeysPerUpload),
});

/** Fetches a member's prekey bundle, consuming one of its one-time prekeys. */
export const PrekeysFetchFrame = z.strictObject({
  type: z.literal('prekeys.fetch'),
  rid: RequestId,
  channel: ChannelId,
  member: MemberKey,
});

/** Asks for the channel's roster. */
export const RosterGetFrame = z.strictObject({
  type: z.literal('roster.get'),
  rid: RequestId,
  channel: ChannelId,
});

/** Convenes a channel: the caller becomes its host. */
export const ConveneFrame = z.strictObject({
  type: z.literal('channel.convene'),
  rid: RequestId,
  signKey: SignKey,
  charter: Charter,
});

/** Host registers an invitation by the hash of a secret it hands out of band. */
export const InviteCreateFrame = z.strictObject({
  type: z.literal('invite.create'),
  rid: RequestId,
  channel: ChannelId,
  secretHash: Hash32,
  role: z.enum(['party', 'observer']),
  expiresAt: Timestamp,
});

/** Redeems an invitation: the caller's keys join the roster as pending. */
export const InviteRedeemFrame = z.strictObject({
  type: z.literal('invite.redeem'),
  rid: RequestId,
  channel: ChannelId,
  secret: Hash32,
  signKey: SignKey,
});

/** A party's signed approval of a pending member. */
export const ApproveFrame = z.strictObject({
  type: z.literal('member.approve'),
  rid: RequestId,
  channel: ChannelId,
  member: MemberKey,
  sig: Signature,
});

/** Leaves a channel. Any party (or observer) may, at any time; its connections are then cut. */
export const LeaveFrame = z.strictObject({
  type: z.literal('member.leave'),
  rid: RequestId,
  channel: ChannelId,
});

/**
 * Votes to remove a member. The member is removed once every other active party has voted, or
 * at once when the host asks and the charter lets the host remove.
 */
export const RemoveFrame = z.strictObject({
  type: z.literal('member.remove'),
  rid: RequestId,
  channel: ChannelId,
  member: MemberKey,
});

/** Dissolves the channel: any party may; the relay deletes its ciphertext, prekeys, invitations, receipts. */
export const DissolveFrame = z.strictObject({
  type: z.literal('channel.dissolve'),
  rid: RequestId,
  channel: ChannelId,
});

/** Votes for a new charter; it takes effect once every active party has voted for the same one. */
export const AmendCharterFrame = z.strictObject({
  type: z.literal('charter.amend'),
  rid: RequestId,
  channel: ChannelId,
  charter: Charter,
});

/**
 * An application-level heartbeat from the client (browsers cannot send WebSocket pings): the
 * relay answers `ok`. A client that hears nothing back in time drops the socket and reconnects,
 * so a half-open connection is noticed by a client that only receives.
 */
export const PingFrame = z.strictObject({
  type: z.literal('ping'),
  rid: RequestId,
});

/** Client → relay frames of the relay core and governance. */
export const ClientFrame = z.discriminatedUnion('type', [
  SendFrame,
  AckFrame,
  SubscribeFrame,
  PrekeysPublishFrame,
  PrekeysFetchFrame,
  RosterGetFrame,
  ConveneFrame,
  InviteCreateFrame,
  InviteRedeemFrame,
  ApproveFrame,
  LeaveFrame,
  RemoveFrame,
  DissolveFrame,
  AmendCharterFrame,
  ...DISCLOSURE_CLIENT_FRAMES,
  PingFrame,
]);

// ---------------------------------------------------------------------------------------------
// Relay → client
// ---------------------------------------------------------------------------------------------

/** The relay's acknowledgement of a send: sent only after the message is durably committed. */
export const SentFrame = z.strictObject({
  type: z.literal('sent'),
  rid: RequestId,
  channel: ChannelId,
  clientMsgId: ClientMessageId,
  seq: Seq,
  receivedAt: Timestamp,
  /** Receipt-chain hash after this message's receipt. */
  chain: Hash32,
  /** True when this answers a retry of a message already committed. */
  duplicate: z.boolean(),
});

/** A message delivered to one recipient: its own header only. */
export const DeliverFrame = z.strictObject({
  type: z.literal('deliver'),
  channel: ChannelId,
  seq: Seq,
  from: MemberKey,
  header: bytesField(LIMITS.maxHeaderBytes),
  body: bytesField(LIMITS.maxBodyBytes),
  commitment: Hash32,
  receivedAt: Timestamp,
  chain: Hash32,
});

/** Subscription accepted; `head` is the channel's current last sequence. */
export const SubscribedFrame = z.strictObject({
  type: z.literal('subscribed'),
  rid: RequestId,
  channel: ChannelId,
  head: Seq,
});

/** Every stored message for this member up to `seq` has been delivered; live delivery follows. */
export const QueueEmptyFrame = z.strictObject({
  type: z.literal('queue.empty'),
  channel: ChannelId,
  seq: Seq,
});

/** A member's prekey bundle. */
export const PrekeysBundleFrame = z.strictObject({
  type: z.literal('prekeys.bundle'),
  rid: RequestId,
  channel: ChannelId,
  member: MemberKey,
  signKey: SignKey,
  signedPrekey: SignedPrekey,
  oneTimePrekey: OneTimePrekey.nullable(),
});

/** The channel's roster as the relay holds it. Clients verify it; they never trust it. */
export const RosterFrame = z.strictObject({
  type: z.literal('roster'),
  rid: RequestId.optional(),
  channel: ChannelId,
  version: z.number().int().min(0),
  status: z.enum(['forming', 'open', 'dissolved']),
  charter: Charter,
  members: z.array(RosterMember).max(LIMITS.maxMembers * 4),
});

/** A channel was convened. */
export const ConvenedFrame = z.strictObject({
  type: z.literal('channel.convened'),
  rid: RequestId,
  channel: ChannelId,
});

/** A request succeeded and has nothing else to say. */
export const OkFrame = z.strictObject({
  type: z.literal('ok'),
  rid: RequestId,
});

/** A request (or, without `rid`, the connection) failed. */
export const ErrorFrame = z.strictObject({
  type: z.literal('error'),
  rid: RequestId.optional(),
  code: z.enum(ERROR_CODES),
  message: z.string().max(500),
  /** With `overloaded`: wait at least this long before retrying (then spread by full jitter). */
  retryAfterMs: z.number().int().min(0).max(600_000).optional(),
});

/** The relay asks the client to reconnect, for example before it shuts down. */
export const ReconnectFrame = z.strictObject({
  type: z.literal('reconnect'),
  reason: z.string().max(200),
  retryAfterMs: z.number().int().min(0).max(600_000),
});

/** Messages the relay purged by retention before every recipient had them: told to their sender. */
export const ExpiredFrame = z.strictObject({
  type: z.literal('expired'),
  channel: ChannelId,
  clientMsgIds: z.array(ClientMessageId).max(10_000),
});

/** The channel was dissolved: the client deletes its channel state. */
export const DissolvedFrame = z.strictObject({
  type: z.literal('channel.dissolved'),
  channel: ChannelId,
});

/** Relay → client frames. */
export const RelayFrame = z.discriminatedUnion('type', [
  SentFrame,
  DeliverFrame,
  SubscribedFrame,
  QueueEmptyFrame,
  PrekeysBundleFrame,
  RosterFrame,
  ConvenedFrame,
  OkFrame,
  ErrorFrame,
  ReconnectFrame,
  ExpiredFrame,
  DissolvedFrame,
  DisclosureFrame,
]);

/** Any client → relay frame. */
export type ClientFrame = z.infer<typeof ClientFrame>;
/** Any relay → client frame. */
export type RelayFrame = z.infer<typeof RelayFrame>;
/** A client frame of the given type. */
export type ClientFrameOf<T extends ClientFrame['type']> = Extract<ClientFrame, { type: T }>;
/** A relay frame of the given type. */
export type RelayFrameOf<T extends RelayFrame['type']> = Extract<RelayFrame, { type: T }>;
/** A charter as sent (defaults applied). */
export type Charter = z.infer<typeof Charter>;
/** A roster member. */
export type RosterMember = z.infer<typeof RosterMember>;
