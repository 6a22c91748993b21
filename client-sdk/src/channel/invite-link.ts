import { z } from 'zod';
import { BackchannelError, ChannelId, Hash32, MemberKey, SignKey, fromBase64Url, fromUtf8, toBase64Url, utf8 } from '../protocol/index.js';

const PREFIX = 'bc1.';

/** What an invitation link carries. Delivered out of band; it holds a one-time secret. */
export const InviteLinkSchema = z.strictObject({
  relay: z.string().url().max(2048),
  channel: ChannelId,
  secret: Hash32,
  role: z.enum(['party', 'observer']),
  /** The host's keys: the invitee pins them. */
  host: z.strictObject({ key: MemberKey, signKey: SignKey }),
  /** Active parties when the link was issued: the invitee's anchor for verifying the roster. */
  parties: z.array(MemberKey).max(32),
  /** Key of the charter's purpose text, which the relay holds only encrypted. */
  purposeKey: Hash32,
});

/** A decoded invitation. */
export type InviteLink = z.infer<typeof InviteLinkSchema>;

/** Encodes an invitation as a single opaque string (`bc1.` + base64url JSON). */
export function encodeInviteLink(invite: InviteLink): string {
  return PREFIX + toBase64Url(utf8(JSON.stringify(InviteLinkSchema.parse(invite))));
}

/** Decodes an invitation; `invite_invalid` when it is not one. */
export function decodeInviteLink(link: string): InviteLink {
  const bytes = link.startsWith(PREFIX) ? fromBase64Url(link.slice(PREFIX.length).trim()) : undefined;
  if (bytes === undefined) throw new BackchannelError('invite_invalid', 'not a Backchannel invitation link');
  try {
    return InviteLinkSchema.parse(JSON.parse(fromUtf8(bytes)));
  } catch (cause) {
    throw new BackchannelError('invite_invalid', 'malformed invitation link', { cause });
  }
}
