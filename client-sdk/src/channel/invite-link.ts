import { z } from 'zod';
import { BackchannelError, ChannelId, Hash32, fromBase64Url, fromUtf8, toBase64Url, utf8 } from '../protocol/index.js';

const PREFIX = 'bc2.';

/** What an invitation link carries. Delivered out of band; it holds a one-time secret. */
export const InviteLinkSchema = z.strictObject({
  relay: z.string().url().max(2048),
  channel: ChannelId,
  /** The channel's fingerprint: the hash of its group log's genesis, which the invitee pins. */
  fingerprint: Hash32,
  /** The group state when the link was issued: the invitee's log must pass through it. */
  at: z.strictObject({ epoch: z.number().int().min(0).max(0xffff_ffff), stateHash: Hash32 }),
  /** The secret the invitation's key pair derives from; it never reaches the relay. */
  secret: Hash32,
  role: z.enum(['party', 'observer']),
  /** Key of the charter's purpose text, which the relay holds only encrypted. */
  purposeKey: Hash32,
});

/** A decoded invitation. */
export type InviteLink = z.infer<typeof InviteLinkSchema>;

/** Encodes an invitation as a single opaque string (`bc2.` + base64url JSON). */
export function encodeInviteLink(invite: InviteLink): string {
  return PREFIX + toBase64Url(utf8(JSON.stringify(InviteLinkSchema.parse(invite))));
}

/** Decodes an invitation; `invite_invalid` when it is not one. */
export function decodeInviteLink(link: string): InviteLink {
  if (link.startsWith('bc1.')) throw new BackchannelError('invite_invalid', 'an invitation from a Backchannel version before the group log; ask the host for a new one');
  const bytes = link.startsWith(PREFIX) ? fromBase64Url(link.slice(PREFIX.length).trim()) : undefined;
  if (bytes === undefined) throw new BackchannelError('invite_invalid', 'not a Backchannel invitation link');
  try {
    return InviteLinkSchema.parse(JSON.parse(fromUtf8(bytes)));
  } catch (cause) {
    throw new BackchannelError('invite_invalid', 'malformed invitation link', { cause });
  }
}
