import { inviteSecretHash, RECEIPT_CHAIN_GENESIS, sodium, verifyApproval } from '@backchannel/client-sdk';
import { BackchannelError, fromBase64Url, toBase64Url, type ClientFrameOf } from '@backchannel/client-sdk/protocol';
import type { Connection } from '../connection.js';
import type { RelayContext } from '../context.js';
import { bumpVersion, insertChannel, rosterMembers, type ChannelState, type MemberState } from '../store/channels.js';
import { channelOf, lockLiveChannel, memberOf, requireRole } from './access.js';

const MAX_INVITE_LIFETIME_MS = 30 * 86_400_000;

/** The caller convenes a channel and becomes its host. */
export async function convene(ctx: RelayContext, conn: Connection, frame: ClientFrameOf<'channel.convene'>): Promise<void> {
  const id = sodium.randombytes_buf(16);
  try {
    await insertChannel(ctx.db, id, frame.charter, conn.memberKey, fromBase64Url(frame.signKey)!, RECEIPT_CHAIN_GENESIS);
  } catch (cause) {
    throw new BackchannelError('already_member', 'this member key already belongs to a channel; use fresh per-channel keys', { cause });
  }
  conn.send({ type: 'channel.convened', rid: frame.rid, channel: toBase64Url(id) });
}

/** The host registers an invitation (by the hash of its secret). */
export async function createInvite(ctx: RelayContext, conn: Connection, frame: ClientFrameOf<'invite.create'>): Promise<void> {
  const state = await channelOf(ctx, frame.channel);
  requireRole(memberOf(state, conn.memberText), 'host');
  const now = Date.now();
  if (frame.expiresAt <= now || frame.expiresAt > now + MAX_INVITE_LIFETIME_MS) {
    throw new BackchannelError('bad_frame', 'expiresAt must be in the future and within 30 days');
  }
  await ctx.db.kysely
    .insertInto('invites')
    .values({ secret_hash: fromBase64Url(frame.secretHash)!, channel_id: state.id, role: frame.role, expires_at: frame.expiresAt, redeemed_by: null })
    .onConflict((oc) => oc.column('secret_hash').doNothing())
    .execute();
  conn.send({ type: 'ok', rid: frame.rid });
}

/** The invitee's keys join the roster as pending; nothing more until every party approves. */
export async function redeemInvite(ctx: RelayContext, conn: Connection, frame: ClientFrameOf<'invite.redeem'>): Promise<void> {
  const channel = fromBase64Url(frame.channel)!;
  const hash = inviteSecretHash(fromBase64Url(frame.secret)!);
  await ctx.db.kysely.transaction().execute(async (trx) => {
    const state = await lockLiveChannel(trx, channel);
    const invite = await trx.selectFrom('invites').selectAll().where('secret_hash', '=', hash).where('channel_id', '=', channel).executeTakeFirst();
    if (invite === undefined) throw new BackchannelError('invite_invalid', 'no such invitation');
    if (invite.redeemed_by !== null) throw new BackchannelError('invite_used', 'this invitation was already redeemed');
    if (Number(invite.expires_at) < Date.now()) throw new BackchannelError('invite_expired', 'this invitation has expired');
    if (state.members.has(conn.memberText)) throw new BackchannelError('already_member', 'already in this channel');
    const seated = [...state.members.values()].filter((m) => m.status === 'pending' || m.status === 'active').length;
    if (seated >= state.charter.memberCap) throw new BackchannelError('channel_full', 'the charter member cap is reached');
    const version = await bumpVersion(trx, channel);
    try {
      await trx
        .insertInto('members')
        .values({ channel_id: channel, member_key: conn.memberKey, sign_key: fromBase64Url(frame.signKey)!, role: invite.role, status: 'pending', since_version: version })
        .execute();
    } catch (cause) {
      throw new BackchannelError('already_member', 'this member key already belongs to a channel; use fresh per-channel keys', { cause });
    }
    await trx.updateTable('invites').set({ redeemed_by: conn.memberKey }).where('secret_hash', '=', hash).execute();
  });
  await ctx.rosterChanged(frame.channel);
  conn.send({ type: 'ok', rid: frame.rid });
}

/**
 * A party's signed approval of a pending member. The member becomes active once every active
 * party has approved it; while the channel forms, once the pending founding parties (at least
 * two) have all approved each other, they all become active and the channel opens. The host and
 * observers cannot approve; the relay cannot approve for anyone (it has no party's sign key).
 */
export async function approve(ctx: RelayContext, conn: Connection, frame: ClientFrameOf<'member.approve'>): Promise<void> {
  const channel = fromBase64Url(frame.channel)!;
  await ctx.db.kysely.transaction().execute(async (trx) => {
    const state = await lockLiveChannel(trx, channel);
    const approver = memberOf(state, conn.memberText, state.status === 'forming' ? ['pending', 'active'] : ['active']);
    requireRole(approver, 'party');
    const target = state.members.get(frame.member);
    if (target === undefined || target.status !== 'pending') throw new BackchannelError('member_not_found', 'no such pending member');
    if (target.keyText === approver.keyText) throw new BackchannelError('approval_invalid', 'a member cannot approve itself');
    const sig = fromBase64Url(frame.sig)!;
    if (!(await verifyApproval({ channel: state.id, memberKey: target.key, memberSignKey: target.signKey, rosterVersion: target.sinceVersion }, sig, approver.signKey))) {
      throw new BackchannelError('approval_invalid', 'the approval signature does not verify');
    }
    await trx
      .insertInto('approvals')
      .values({ channel_id: channel, member_key: target.key, approver_key: approver.key, sig })
      .onConflict((oc) => oc.columns(['channel_id', 'member_key', 'approver_key']).doNothing())
      .execute();
    const approvals = new Map(target.approvals).set(approver.keyText, sig);
    const after: ChannelState = { ...state, members: new Map(state.members).set(target.keyText, { ...target, approvals }) };
    const activate = toActivate(after);
    if (activate.length > 0) {
      await bumpVersion(trx, channel);
      await trx
        .updateTable('members')
        .set({ status: 'active' })
        .where('channel_id', '=', channel)
        .where('member_key', 'in', activate.map((m) => m.key))
        .execute();
      if (state.status === 'forming') await trx.updateTable('channels').set({ status: 'open' }).where('id', '=', channel).execute();
    }
  });
  await ctx.rosterChanged(frame.channel);
  conn.send({ type: 'ok', rid: frame.rid });
}

/** Members that the approvals now in place make active (the admission rule, in one place). */
export function toActivate(state: ChannelState): MemberState[] {
  const members = [...state.members.values()];
  const parties = (status: MemberState['status']) => members.filter((m) => m.role === 'party' && m.status === status);
  const approvedByAll = (m: MemberState, by: MemberState[]) => by.every((p) => p.keyText === m.keyText || m.approvals.has(p.keyText));
  if (state.status === 'forming') {
    const founders = parties('pending');
    return founders.length >= 2 && founders.every((f) => approvedByAll(f, founders)) ? founders : [];
  }
  const active = parties('active');
  return members.filter((m) => m.status === 'pending' && active.length > 0 && approvedByAll(m, active));
}

/** The roster as the relay holds it; clients verify every entry themselves. */
export async function getRoster(ctx: RelayContext, conn: Connection, frame: ClientFrameOf<'roster.get'>): Promise<void> {
  const state = await channelOf(ctx, frame.channel);
  memberOf(state, conn.memberText, ['pending', 'active']);
  conn.send({
    type: 'roster',
    rid: frame.rid,
    channel: frame.channel,
    version: state.version,
    status: state.status,
    charter: state.charter,
    members: rosterMembers(state),
  });
}
