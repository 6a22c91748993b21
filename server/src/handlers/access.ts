import type { GroupLogState } from '@backchannel/client-sdk';
import { BackchannelError } from '@backchannel/client-sdk/protocol';
import type { RelayContext } from '../context.js';
import type { Transaction } from 'kysely';
import type { Database } from '../db/schema.js';
import { lockChannel, type ChannelState, type MemberState } from '../store/channels.js';

/** Loads a channel or fails with `channel_not_found`. */
export async function channelOf(ctx: RelayContext, channelText: string): Promise<ChannelState> {
  const state = await ctx.cache.get(channelText);
  if (state === undefined || state.status === 'dissolved') throw new BackchannelError('channel_not_found', 'no such channel');
  groupOf(state);
  return state;
}

/** The channel's verified group state, or `channel_legacy` for a channel convened before the group log. */
export function groupOf(state: ChannelState): GroupLogState {
  if (state.group === null) throw new BackchannelError('channel_legacy', 'this channel predates the verifiable group log; convene a new one');
  return state.group;
}

/** Locks a channel's row for the rest of the transaction and reads it, or fails with `channel_not_found`. */
export async function lockLiveChannel(trx: Transaction<Database>, id: Uint8Array): Promise<ChannelState> {
  const state = await lockChannel(trx, id);
  if (state === undefined || state.status === 'dissolved') throw new BackchannelError('channel_not_found', 'no such channel');
  groupOf(state);
  return state;
}

/** The caller's membership, in one of the given statuses, or `not_member`. */
export function memberOf(state: ChannelState, memberText: string, statuses: MemberState['status'][] = ['active']): MemberState {
  const m = state.members.get(memberText);
  if (m === undefined || !statuses.includes(m.status)) throw new BackchannelError('not_member', 'not a member of this channel');
  return m;
}

/** Requires one of the given roles, or `wrong_role`. */
export function requireRole(m: MemberState, ...roles: MemberState['role'][]): void {
  if (!roles.includes(m.role)) throw new BackchannelError('wrong_role', `this needs the role ${roles.join(' or ')}`);
}
