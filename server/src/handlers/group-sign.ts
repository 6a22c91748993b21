import { applyEntry, canonicalJson, proposalHash, signerRule, verifyGroupChange, statementOf, type GroupLogState } from '@backchannel/client-sdk';
import { BackchannelError, fromBase64Url, toBase64Url, type ClientFrameOf, type GroupChange, type GroupEntry, type Seat } from '@backchannel/client-sdk/protocol';
import type { Transaction } from 'kysely';
import type { Connection } from '../connection.js';
import type { RelayContext } from '../context.js';
import type { Database } from '../db/schema.js';
import { bumpVersion, type ChannelState } from '../store/channels.js';
import { groupOf, lockLiveChannel } from './access.js';

/** Tables emptied of a channel's rows on dissolve. Formal records and the group log are not among them. */
export const DISSOLVE_TABLES = [
  'disclosure_consents',
  'disclosures',
  'messages',
  'receipts',
  'signed_prekeys',
  'one_time_prekeys',
  'invites',
  'group_signatures',
  'expiry_notices',
] as const;

/** Seats a change adds must be pending members whose redeemed invitation the relay holds, unchanged. */
function checkSeatsPending(state: ChannelState, change: GroupChange): void {
  const seats: Seat[] = change.kind === 'found' ? change.members : change.kind === 'add' ? [change.member] : [];
  for (const seat of seats) {
    const m = state.members.get(seat.key);
    if (m === undefined || m.status !== 'pending' || m.seat === null || canonicalJson(m.seat) !== canonicalJson(seat)) {
      throw new BackchannelError('member_not_found', 'no such pending member');
    }
  }
}

/** Makes the relay's projection (members, charter, status) follow an appended change. */
async function project(trx: Transaction<Database>, state: ChannelState, change: GroupChange, group: GroupLogState): Promise<void> {
  const id = state.id;
  const setStatus = (member: string, status: 'active' | 'left' | 'removed') =>
    trx.updateTable('members').set({ status, seat: null }).where('channel_id', '=', id).where('member_key', '=', fromBase64Url(member)!).execute();
  switch (change.kind) {
    case 'found':
      for (const s of change.members) await setStatus(s.key, 'active');
      await trx.updateTable('channels').set({ status: 'open' }).where('id', '=', id).execute();
      break;
    case 'add':
      await setStatus(change.member.key, 'active');
      break;
    case 'remove':
    case 'leave': {
      const key = fromBase64Url(change.member)!;
      await setStatus(change.member, change.kind === 'leave' ? 'left' : 'removed');
      // Nobody may start a session with a member who is gone.
      await trx.deleteFrom('signed_prekeys').where('member_key', '=', key).execute();
      await trx.deleteFrom('one_time_prekeys').where('member_key', '=', key).execute();
      break;
    }
    case 'role':
      await trx.updateTable('members').set({ role: change.role }).where('channel_id', '=', id).where('member_key', '=', fromBase64Url(change.member)!).execute();
      break;
    case 'charter':
      await trx.updateTable('channels').set({ charter: JSON.stringify(change.charter) }).where('id', '=', id).execute();
      break;
    case 'dissolve':
      for (const table of DISSOLVE_TABLES) await trx.deleteFrom(table).where('channel_id', '=', id).execute();
      await trx.updateTable('channels').set({ status: 'dissolved' }).where('id', '=', id).execute();
      break;
    case 'genesis':
      break;
  }
  await trx.updateTable('channels').set({ group_state: JSON.stringify(group) }).where('id', '=', id).execute();
  await bumpVersion(trx, id);
}

/**
 * A member's signature over a proposed change. The relay checks it as a first line of defence
 * (clients verify again): the proposal must build on the current head (`group_stale`), the
 * signer must be one the current state requires (`group_signature`), and added members must be
 * pending with the invitation they redeemed. Signatures wait until the proposal has every one
 * it needs; then the entry is verified whole, appended, and every member is told.
 */
export async function signGroupChange(ctx: RelayContext, conn: Connection, frame: ClientFrameOf<'group.sign'>): Promise<void> {
  const id = fromBase64Url(frame.channel)!;
  const appended = await ctx.db.kysely.transaction().execute(async (trx) => {
    const state = await lockLiveChannel(trx, id);
    const group = groupOf(state);
    const proposal = frame.proposal;
    if (proposal.epoch !== group.epoch + 1 || proposal.prev !== group.stateHash) throw new BackchannelError('group_stale', 'the proposal builds on another state; re-propose it on the current one');
    const rule = signerRule(group, proposal.change);
    const signKey = rule.eligible.get(conn.memberText);
    if (signKey === undefined) throw new BackchannelError('group_signature', 'this member’s signature is not one this change needs');
    if (!(await verifyGroupChange(statementOf(frame.channel, proposal), frame.sig, signKey))) throw new BackchannelError('group_signature', 'the signature does not verify');
    // The seat must be the one the relay built at redemption, from a grant it checked against the
    // host's key and a proof it checked against the invitation's: clients verify it again.
    checkSeatsPending(state, proposal.change);
    const hash = fromBase64Url(proposalHash(frame.channel, proposal))!;
    await trx
      .insertInto('group_signatures')
      .values({ channel_id: id, proposal_hash: hash, proposal: JSON.stringify(proposal), signer_key: conn.memberKey, sig: fromBase64Url(frame.sig)! })
      .onConflict((oc) => oc.columns(['channel_id', 'proposal_hash', 'signer_key']).doNothing())
      .execute();
    const rows = await trx.selectFrom('group_signatures').select(['signer_key', 'sig']).where('channel_id', '=', id).where('proposal_hash', '=', hash).execute();
    const sigs = rows.map((r) => ({ by: toBase64Url(r.signer_key), sig: toBase64Url(r.sig) })).sort((a, b) => (a.by < b.by ? -1 : 1));
    if (!rule.complete(new Set(sigs.map((s) => s.by)))) return false;
    const entry: GroupEntry = { ...proposal, sigs };
    const after = await applyEntry(group, entry);
    await trx.insertInto('group_log').values({ channel_id: id, epoch: entry.epoch, entry: JSON.stringify(entry), state_hash: fromBase64Url(after.stateHash)! }).execute();
    // Every other proposal built on the old head is stale now.
    await trx.deleteFrom('group_signatures').where('channel_id', '=', id).execute();
    await project(trx, state, proposal.change, after);
    return true;
  });
  conn.send({ type: 'ok', rid: frame.rid });
  if (appended) await ctx.rosterChanged(frame.channel);
}
