import { applyEntry, RECEIPT_CHAIN_GENESIS, verifyGrant, verifyRedeem } from '@backchannel/client-sdk';
import { BackchannelError, MAX_GROUP_ENTRIES_PER_FRAME, fromBase64Url, type ClientFrameOf, type GroupEntry, type Seat } from '@backchannel/client-sdk/protocol';
import type { Connection } from '../connection.js';
import type { RelayContext } from '../context.js';
import { bumpVersion, insertChannel, readChannel, type ChannelState } from '../store/channels.js';
import { channelOf, groupOf, lockLiveChannel, memberOf, requireRole } from './access.js';

const MAX_INVITE_LIFETIME_MS = 30 * 86_400_000;

/** The caller convenes a channel from the genesis it signed, and becomes its host. */
export async function convene(ctx: RelayContext, conn: Connection, frame: ClientFrameOf<'channel.convene'>): Promise<void> {
  const group = await applyEntry(undefined, frame.genesis);
  if (group.host !== conn.memberText) throw new BackchannelError('group_invalid', 'the genesis names another host');
  if ((await readChannel(ctx.db.kysely, fromBase64Url(group.channel)!)) !== undefined) throw new BackchannelError('group_invalid', 'a channel with this id exists');
  try {
    await insertChannel(ctx.db, group, frame.genesis, RECEIPT_CHAIN_GENESIS);
  } catch (cause) {
    throw new BackchannelError('already_member', 'this member key already belongs to a channel; use fresh per-channel keys', { cause });
  }
  conn.send({ type: 'channel.convened', rid: frame.rid, channel: group.channel });
}

/** The host registers an invitation: the public key derived from its secret, signed by the host. */
export async function createInvite(ctx: RelayContext, conn: Connection, frame: ClientFrameOf<'invite.create'>): Promise<void> {
  const state = await channelOf(ctx, frame.channel);
  const host = memberOf(state, conn.memberText);
  requireRole(host, 'host');
  const now = Date.now();
  const grant = frame.invite;
  if (grant.expiresAt <= now || grant.expiresAt > now + MAX_INVITE_LIFETIME_MS) {
    throw new BackchannelError('bad_frame', 'expiresAt must be in the future and within 30 days');
  }
  if (!(await verifyGrant({ channel: frame.channel, inviteKey: grant.key, role: grant.role, expiresAt: grant.expiresAt }, grant.sig, host.signKey))) {
    throw new BackchannelError('invite_invalid', 'the host’s signature over the invitation does not verify');
  }
  await ctx.db.kysely
    .insertInto('invites')
    .values({ invite_key: fromBase64Url(grant.key)!, grant: JSON.stringify(grant), channel_id: state.id, role: grant.role, expires_at: grant.expiresAt, redeemed_by: null })
    .onConflict((oc) => oc.column('invite_key').doNothing())
    .execute();
  conn.send({ type: 'ok', rid: frame.rid });
}

/**
 * The invitee's keys, signed by the invitation's key, join the pending members. Nothing more
 * happens until the parties sign its admission into the group log.
 */
export async function redeemInvite(ctx: RelayContext, conn: Connection, frame: ClientFrameOf<'invite.redeem'>): Promise<void> {
  const channel = fromBase64Url(frame.channel)!;
  const inviteKey = fromBase64Url(frame.invite)!;
  await ctx.db.kysely.transaction().execute(async (trx) => {
    const state = await lockLiveChannel(trx, channel);
    const invite = await trx.selectFrom('invites').selectAll().where('invite_key', '=', inviteKey).where('channel_id', '=', channel).executeTakeFirst();
    if (invite === undefined) throw new BackchannelError('invite_invalid', 'no such invitation');
    const proof = { channel: frame.channel, inviteKey: frame.invite, memberKey: conn.memberText, memberSignKey: frame.signKey };
    if (!(await verifyRedeem(proof, frame.proof, frame.invite))) throw new BackchannelError('invite_invalid', 'the redemption is not signed by the invitation’s key');
    if (invite.redeemed_by !== null) throw new BackchannelError('invite_used', 'this invitation was already redeemed');
    if (Number(invite.expires_at) < Date.now()) throw new BackchannelError('invite_expired', 'this invitation has expired');
    if (state.members.has(conn.memberText)) throw new BackchannelError('already_member', 'already in this channel');
    const seated = [...state.members.values()].filter((m) => m.status === 'pending' || m.status === 'active').length;
    if (seated >= state.charter.memberCap) throw new BackchannelError('channel_full', 'the charter member cap is reached');
    const grant = invite.grant as Seat['invite'];
    const seat: Seat = { key: conn.memberText, signKey: frame.signKey, role: grant.role, invite: grant, proof: frame.proof };
    const version = await bumpVersion(trx, channel);
    try {
      await trx
        .insertInto('members')
        .values({ channel_id: channel, member_key: conn.memberKey, sign_key: fromBase64Url(frame.signKey)!, role: grant.role, status: 'pending', since_version: version, seat: JSON.stringify(seat) })
        .execute();
    } catch (cause) {
      throw new BackchannelError('already_member', 'this member key already belongs to a channel; use fresh per-channel keys', { cause });
    }
    await trx.updateTable('invites').set({ redeemed_by: conn.memberKey }).where('invite_key', '=', inviteKey).execute();
  });
  await ctx.rosterChanged(frame.channel);
  conn.send({ type: 'ok', rid: frame.rid });
}

/** Pending members' seats, as the relay holds them (clients verify each). */
export function pendingSeats(state: ChannelState): Seat[] {
  return [...state.members.values()].flatMap((m) => (m.status === 'pending' && m.seat !== null ? [m.seat] : []));
}

/** Reads log entries from `from` (inclusive), at most one frame's worth. */
export async function readLog(ctx: RelayContext, state: ChannelState, from: number): Promise<GroupEntry[]> {
  const rows = await ctx.db.kysely
    .selectFrom('group_log')
    .select('entry')
    .where('channel_id', '=', state.id)
    .where('epoch', '>=', from)
    .orderBy('epoch')
    .limit(MAX_GROUP_ENTRIES_PER_FRAME)
    .execute();
  return rows.map((r) => r.entry as GroupEntry);
}

/**
 * The group log from `from`, the head and the pending members. Members (and members whose
 * membership just ended, so they can verify why) may read it; after dissolution too, so every
 * client can verify the dissolve.
 */
export async function getGroup(ctx: RelayContext, conn: Connection, frame: ClientFrameOf<'group.get'>): Promise<void> {
  const state = await ctx.cache.get(frame.channel);
  if (state === undefined) throw new BackchannelError('channel_not_found', 'no such channel');
  if (!state.members.has(conn.memberText)) throw new BackchannelError('not_member', 'not a member of this channel');
  const group = groupOf(state);
  conn.send({ type: 'group', rid: frame.rid, channel: frame.channel, head: group.epoch, entries: await readLog(ctx, state, frame.from), pending: pendingSeats(state) });
}
