import { BackchannelError, fromBase64Url, toBase64Url, type ClientFrameOf } from '@backchannel/client-sdk/protocol';
import type { Connection } from '../connection.js';
import type { RelayContext } from '../context.js';
import { bumpVersion, type ChannelState } from '../store/channels.js';
import type { Transaction } from 'kysely';
import type { Database } from '../db/schema.js';
import { lockLiveChannel, memberOf } from './access.js';

async function endMembership(trx: Transaction<Database>, state: ChannelState, member: Uint8Array, status: 'left' | 'removed'): Promise<void> {
  await bumpVersion(trx, state.id);
  await trx.updateTable('members').set({ status }).where('channel_id', '=', state.id).where('member_key', '=', member).execute();
  // Nobody may start a session with a member who is gone.
  await trx.deleteFrom('signed_prekeys').where('member_key', '=', member).execute();
  await trx.deleteFrom('one_time_prekeys').where('member_key', '=', member).execute();
  await trx.deleteFrom('removal_votes').where('channel_id', '=', state.id).where((eb) => eb.or([eb('member_key', '=', member), eb('voter_key', '=', member)])).execute();
}

/** Any member may leave at any time; its connections are cut and its prekeys deleted. */
export async function leave(ctx: RelayContext, conn: Connection, frame: ClientFrameOf<'member.leave'>): Promise<void> {
  await ctx.db.kysely.transaction().execute(async (trx) => {
    const state = await lockLiveChannel(trx, fromBase64Url(frame.channel)!);
    memberOf(state, conn.memberText, ['pending', 'active']);
    await endMembership(trx, state, conn.memberKey, 'left');
  });
  conn.send({ type: 'ok', rid: frame.rid });
  await ctx.rosterChanged(frame.channel);
}

/**
 * A vote to remove a member: it is removed once every other active party has voted, or at
 * once when the host asks and the charter allows the host to remove.
 */
export async function remove(ctx: RelayContext, conn: Connection, frame: ClientFrameOf<'member.remove'>): Promise<void> {
  await ctx.db.kysely.transaction().execute(async (trx) => {
    const state = await lockLiveChannel(trx, fromBase64Url(frame.channel)!);
    const voter = memberOf(state, conn.memberText);
    const target = state.members.get(frame.member);
    if (target === undefined || (target.status !== 'active' && target.status !== 'pending')) {
      throw new BackchannelError('member_not_found', 'no such member');
    }
    if (target.keyText === voter.keyText) throw new BackchannelError('forbidden', 'use member.leave to leave');
    if (voter.role === 'host') {
      if (!state.charter.hostMayRemove) throw new BackchannelError('forbidden', 'the charter does not let the host remove members');
      await endMembership(trx, state, target.key, 'removed');
      return;
    }
    if (voter.role !== 'party') throw new BackchannelError('wrong_role', 'only parties vote on removal');
    await trx
      .insertInto('removal_votes')
      .values({ channel_id: state.id, member_key: target.key, voter_key: voter.key })
      .onConflict((oc) => oc.doNothing())
      .execute();
    const votes = await trx.selectFrom('removal_votes').select('voter_key').where('channel_id', '=', state.id).where('member_key', '=', target.key).execute();
    const voted = new Set(votes.map((v) => toBase64Url(v.voter_key)));
    const needed = [...state.members.values()].filter((m) => m.role === 'party' && m.status === 'active' && m.keyText !== target.keyText);
    if (needed.every((m) => voted.has(m.keyText))) await endMembership(trx, state, target.key, 'removed');
  });
  conn.send({ type: 'ok', rid: frame.rid });
  await ctx.rosterChanged(frame.channel);
}
