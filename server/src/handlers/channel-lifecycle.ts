import { sodium } from '@backchannel/client-sdk';
import { BackchannelError, Charter, fromBase64Url, toBase64Url, utf8, type ClientFrameOf } from '@backchannel/client-sdk/protocol';
import type { Connection } from '../connection.js';
import type { RelayContext } from '../context.js';
import { bumpVersion } from '../store/channels.js';
import { lockLiveChannel, memberOf, requireRole } from './access.js';

/** Tables emptied of a channel's rows on dissolve. Formal records are not among them. */
export const DISSOLVE_TABLES = [
  'disclosure_consents',
  'disclosures',
  'messages',
  'receipts',
  'signed_prekeys',
  'one_time_prekeys',
  'invites',
  'approvals',
  'removal_votes',
  'charter_votes',
  'expiry_notices',
] as const;

/**
 * The escape hatch: any party dissolves the channel, immediately and irreversibly. The relay
 * deletes its ciphertext, receipts, prekeys and invitations; only published formal records stay.
 */
export async function dissolve(ctx: RelayContext, conn: Connection, frame: ClientFrameOf<'channel.dissolve'>): Promise<void> {
  const id = fromBase64Url(frame.channel)!;
  await ctx.db.kysely.transaction().execute(async (trx) => {
    const state = await lockLiveChannel(trx, id);
    requireRole(memberOf(state, conn.memberText), 'party');
    for (const table of DISSOLVE_TABLES) await trx.deleteFrom(table).where('channel_id', '=', id).execute();
    await trx.updateTable('channels').set({ status: 'dissolved' }).where('id', '=', id).execute();
    await bumpVersion(trx, id);
  });
  conn.send({ type: 'ok', rid: frame.rid });
  await ctx.rosterChanged(frame.channel);
}

/** Canonical hash of a charter (zod output keeps the schema's key order). */
function charterHash(charter: Charter): Uint8Array {
  return sodium.crypto_generichash(32, utf8(JSON.stringify(Charter.parse(charter))), null);
}

/** A party's vote for a new charter; applied once every active party voted for the same one. */
export async function amendCharter(ctx: RelayContext, conn: Connection, frame: ClientFrameOf<'charter.amend'>): Promise<void> {
  const id = fromBase64Url(frame.channel)!;
  await ctx.db.kysely.transaction().execute(async (trx) => {
    const state = await lockLiveChannel(trx, id);
    const voter = memberOf(state, conn.memberText);
    requireRole(voter, 'party');
    const seated = [...state.members.values()].filter((m) => m.status === 'active' || m.status === 'pending').length;
    if (frame.charter.memberCap < seated) throw new BackchannelError('charter_invalid', 'the member cap is below the members already seated');
    const hash = charterHash(frame.charter);
    await trx
      .insertInto('charter_votes')
      .values({ channel_id: id, voter_key: voter.key, charter: JSON.stringify(frame.charter), charter_hash: hash })
      .onConflict((oc) => oc.columns(['channel_id', 'voter_key']).doUpdateSet({ charter: JSON.stringify(frame.charter), charter_hash: hash }))
      .execute();
    const votes = await trx.selectFrom('charter_votes').select(['voter_key', 'charter_hash']).where('channel_id', '=', id).execute();
    const agreeing = new Set(votes.filter((v) => sodium.memcmp(new Uint8Array(v.charter_hash), hash)).map((v) => toBase64Url(v.voter_key)));
    const parties = [...state.members.values()].filter((m) => m.role === 'party' && m.status === 'active');
    if (parties.every((p) => agreeing.has(p.keyText))) {
      await trx.updateTable('channels').set({ charter: JSON.stringify(frame.charter) }).where('id', '=', id).execute();
      await trx.deleteFrom('charter_votes').where('channel_id', '=', id).execute();
      await bumpVersion(trx, id);
    }
  });
  conn.send({ type: 'ok', rid: frame.rid });
  await ctx.rosterChanged(frame.channel);
}
