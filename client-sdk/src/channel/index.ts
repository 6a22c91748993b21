export { ChannelClient } from './channel-client.js';
export type { ChannelAlarm, ChannelEvents, ChannelMessage, GroupView, Sent } from './channel-events.js';
export { convene, join, reopen, type CharterInput, type ClientOptions } from './lifecycle.js';
export type { PendingMember } from './group-sync.js';
export { DEFAULT_PREKEY_ROTATION, type PrekeyRotation } from './prekey-schedule.js';
export { decodeInviteLink, encodeInviteLink, type InviteLink } from './invite-link.js';
export type { Draft, MessageContent } from './content.js';
export { DisclosureDesk, type DisclosureState, type ReviewedItem } from './disclosure-desk.js';
export type { AuthoredDraft } from './channel-record.js';
