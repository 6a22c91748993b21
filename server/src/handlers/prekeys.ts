import { sql } from 'kysely';
import { verifySignedPrekey } from '@backchannel/client-sdk';
import { BackchannelError, LIMITS, fromBase64Url, toBase64Url, type ClientFrameOf } from '@backchannel/client-sdk/protocol';
import type { Connection } from '../connection.js';
import type { RelayContext } from '../context.js';
import { channelOf, memberOf } from './access.js';

/**
 * Stores the caller's signed prekey (replacing the previous one) and adds one-time prekeys up
 * to the stored cap. The signature is checked here for a clear early error; clients check it
 * again, since they trust nothing the relay hands them.
 */
export async function publishPrekeys(ctx: RelayContext, conn: Connection, frame: ClientFrameOf<'prekeys.publish'>): Promise<void> {
  const state = await channelOf(ctx, frame.channel);
  const me = memberOf(state, conn.memberText, ['pending', 'active']);
  const spk = frame.signedPrekey;
  if (!(await verifySignedPrekey(me.signKey, state.id, conn.memberKey, spk))) {
    throw new BackchannelError('prekey_signature_invalid', 'the signed prekey does not verify under the member sign key');
  }
  await ctx.db.kysely.transaction().execute(async (trx) => {
    const values = { member_key: conn.memberKey, channel_id: state.id, prekey_id: spk.id, prekey: fromBase64Url(spk.key)!, sig: fromBase64Url(spk.sig)! };
    await trx
      .insertInto('signed_prekeys')
      .values(values)
      .onConflict((oc) => oc.column('member_key').doUpdateSet({ prekey_id: spk.id, prekey: values.prekey, sig: values.sig }))
      .execute();
    if (frame.oneTimePrekeys.length === 0) return;
    const { count } = await trx
      .selectFrom('one_time_prekeys')
      .select((eb) => eb.fn.countAll<string>().as('count'))
      .where('member_key', '=', conn.memberKey)
      .executeTakeFirstOrThrow();
    const room = LIMITS.maxOneTimePrekeysStored - Number(count);
    const batch = frame.oneTimePrekeys.slice(0, Math.max(0, room));
    if (batch.length === 0) return;
    await trx
      .insertInto('one_time_prekeys')
      .values(batch.map((k) => ({ member_key: conn.memberKey, channel_id: state.id, prekey_id: k.id, prekey: fromBase64Url(k.key)! })))
      .onConflict((oc) => oc.columns(['member_key', 'prekey_id']).doNothing())
      .execute();
  });
  conn.send({ type: 'ok', rid: frame.rid });
}

/**
 * Hands out a member's bundle; each one-time prekey is taken (deleted) exactly once. Fetches are
 * bounded per (channel, fetcher) (`prekey-fetch-limit.ts`).
 */
export async function fetchPrekeys(ctx: RelayContext, conn: Connection, frame: ClientFrameOf<'prekeys.fetch'>): Promise<void> {
  const state = await channelOf(ctx, frame.channel);
  // Only members of the verified group state may take one-time prekeys, and only of its members.
  memberOf(state, conn.memberText, ['active']);
  const target = state.members.get(frame.member);
  if (target === undefined || target.status !== 'active') {
    throw new BackchannelError('member_not_found', 'no such member in this channel');
  }
  const active = [...state.members.values()].filter((m) => m.status === 'active').length;
  if (!ctx.prekeyFetches.take(frame.channel, conn.memberText, active)) {
    throw new BackchannelError('rate_limited', 'too many prekey fetches in this channel; try again in a minute');
  }
  const signed = await ctx.db.kysely
    .selectFrom('signed_prekeys')
    .select(['prekey_id', 'prekey', 'sig'])
    .where('member_key', '=', target.key)
    .executeTakeFirst();
  if (signed === undefined) throw new BackchannelError('prekeys_exhausted', 'the member has published no prekeys');
  const oneTime = await sql<{ prekey_id: string; prekey: Uint8Array }>`
    delete from one_time_prekeys
     where (member_key, prekey_id) = (
       select member_key, prekey_id from one_time_prekeys where member_key = ${target.key}
        order by prekey_id limit 1 for update skip locked)
    returning prekey_id, prekey`.execute(ctx.db.kysely);
  const otk = oneTime.rows[0];
  conn.send({
    type: 'prekeys.bundle',
    rid: frame.rid,
    channel: frame.channel,
    member: frame.member,
    signKey: toBase64Url(target.signKey),
    signedPrekey: { id: Number(signed.prekey_id), key: toBase64Url(signed.prekey), sig: toBase64Url(signed.sig) },
    oneTimePrekey: otk === undefined ? null : { id: Number(otk.prekey_id), key: toBase64Url(otk.prekey) },
  });
}
