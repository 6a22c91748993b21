import { z } from 'zod';
import { ERROR_CODES } from './errors.js';
import {
  ChannelId,
  ClientMessageId,
  Hash32,
  MemberKey,
  RequestId,
  Seq,
  SignKey,
  Signature,
  Timestamp,
  bytesField,
} from './fields.js';
import { LIMITS } from './limits.js';
import { DISCLOSURE_CLIENT_FRAMES, DisclosureFrame } from './disclosure.js';
import { GroupEntry, GroupFrame, GroupGetFrame, GroupSignFrame, InviteGrant } from './group.js';

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

/**
 * Convenes a channel: the caller becomes its host. The genesis names the channel id (16 random
 * bytes the host chose), the host's keys and the charter, signed by the host; its hash is the
 * channel's fingerprint.
 */
export const ConveneFrame = z.strictObject({
  type: z.literal('channel.convene'),
  rid: RequestId,
  genesis: GroupEntry,
});

/** The host registers an invitation: the public key derived from its secret, signed by the host. */
export const InviteCreateFrame = z.strictObject({
  type: z.literal('invite.create'),
  rid: RequestId,
  channel: ChannelId,
  invite: InviteGrant,
});

/**
 * Redeems an invitation: the caller's keys, signed by the invitation's key (`proof`), join the
 * pending members. The secret never leaves the invitee.
 */
export const InviteRedeemFrame = z.strictObject({
  type: z.literal('invite.redeem'),
  rid: RequestId,
  channel: ChannelId,
  invite: SignKey,
  signKey: SignKey,
  proof: Signature,
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
  ConveneFrame,
  InviteCreateFrame,
  InviteRedeemFrame,
  GroupGetFrame,
  GroupSignFrame,
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

/** Relay → client frames. */
export const RelayFrame = z.discriminatedUnion('type', [
  SentFrame,
  DeliverFrame,
  SubscribedFrame,
  QueueEmptyFrame,
  PrekeysBundleFrame,
  GroupFrame,
  ConvenedFrame,
  OkFrame,
  ErrorFrame,
  ReconnectFrame,
  ExpiredFrame,
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
