import { verifyCheckpoint, type Checkpoint } from '@backchannel/client-sdk';
import { BackchannelError, toBase64Url, type ClientFrameOf } from '@backchannel/client-sdk/protocol';
import type { Connection } from '../connection.js';
import type { RelayContext } from '../context.js';
import type { Q } from '../store/channels.js';
import { channelOf, groupOf, memberOf } from '../handlers/access.js';

/**
 * A party co-signs the formal log's head it verified. Checked here as a first line of defence
 * (observers verify every checkpoint again): the signer is a party of the current group state,
 * the checkpoint names that state, the record exists with that hash, and the signature verifies.
 */
export async function checkpoint(ctx: RelayContext, conn: Connection, frame: ClientFrameOf<'formal.checkpoint'>): Promise<void> {
  const state = await channelOf(ctx, frame.channel);
  const me = memberOf(state, conn.memberText);
  const group = groupOf(state);
  if (group.members[conn.memberText]?.role !== 'party') throw new BackchannelError('wrong_role', 'only parties co-sign the formal log');
  if (frame.epoch !== group.epoch || frame.stateHash !== group.stateHash) throw new BackchannelError('group_stale', 'the checkpoint names another group state than the current one');
  const record = await ctx.db.kysely.selectFrom('formal_records').select('hash').where('channel_id', '=', state.id).where('idx', '=', frame.index).executeTakeFirst();
  if (record === undefined || toBase64Url(new Uint8Array(record.hash)) !== frame.hash) throw new BackchannelError('checkpoint_invalid', 'no record with this index and hash');
  const statement = { channel: frame.channel, index: frame.index, hash: frame.hash, epoch: frame.epoch, stateHash: frame.stateHash };
  if (!(await verifyCheckpoint(statement, frame.sig, me.signKey))) throw new BackchannelError('checkpoint_invalid', 'the checkpoint signature does not verify');
  const stored: Checkpoint = { index: frame.index, hash: frame.hash, epoch: frame.epoch, stateHash: frame.stateHash, signKey: toBase64Url(me.signKey), sig: frame.sig };
  await ctx.db.kysely
    .insertInto('formal_checkpoints')
    .values({ channel_id: state.id, idx: frame.index, signer_key: me.key, checkpoint: JSON.stringify(stored) })
    .onConflict((oc) => oc.columns(['channel_id', 'idx', 'signer_key']).doNothing())
    .execute();
  conn.send({ type: 'ok', rid: frame.rid });
}

/** Every checkpoint of a channel, in index order. */
export async function readCheckpoints(q: Q, channel: Uint8Array): Promise<Checkpoint[]> {
  const rows = await q.selectFrom('formal_checkpoints').select('checkpoint').where('channel_id', '=', channel).orderBy('idx').orderBy('signer_key').execute();
  return rows.map((r) => r.checkpoint as Checkpoint);
}
