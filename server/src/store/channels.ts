import { sql, type Transaction } from 'kysely';
import type { GroupLogState } from '@backchannel/client-sdk';
import { type Charter, type Seat, fromBase64Url, toBase64Url } from '@backchannel/client-sdk/protocol';
import type { Db } from '../db/connect.js';
import type { Database } from '../db/schema.js';

/** A channel's membership as the relay enforces it. */
export interface ChannelState {
  readonly id: Uint8Array;
  readonly idText: string;
  readonly status: 'forming' | 'open' | 'dissolved';
  readonly charter: Charter;
  readonly version: number;
  readonly members: ReadonlyMap<string, MemberState>;
  /** The verified group state; null for a channel convened before the group log (refused). */
  readonly group: GroupLogState | null;
}

/** One member of a channel. */
export interface MemberState {
  readonly key: Uint8Array;
  readonly keyText: string;
  readonly signKey: Uint8Array;
  readonly role: 'host' | 'party' | 'observer';
  readonly status: 'pending' | 'active' | 'left' | 'removed';
  /** A pending member's redeemed invitation. */
  readonly seat: Seat | null;
}

/** A kysely handle or an open transaction. */
export type Q = Db['kysely'] | Transaction<Database>;

/** Reads a channel and its roster; undefined when it does not exist. */
export async function readChannel(q: Q, id: Uint8Array): Promise<ChannelState | undefined> {
  const channel = await q.selectFrom('channels').select(['id', 'status', 'charter', 'roster_version', 'group_state']).where('id', '=', id).executeTakeFirst();
  if (channel === undefined) return undefined;
  const members = await q.selectFrom('members').select(['member_key', 'sign_key', 'role', 'status', 'seat']).where('channel_id', '=', id).orderBy('joined_at').execute();
  const map = new Map<string, MemberState>();
  for (const m of members) {
    const keyText = toBase64Url(m.member_key);
    map.set(keyText, {
      key: new Uint8Array(m.member_key),
      keyText,
      signKey: new Uint8Array(m.sign_key),
      role: m.role,
      status: m.status,
      seat: (m.seat as Seat | null) ?? null,
    });
  }
  return {
    id: new Uint8Array(channel.id),
    idText: toBase64Url(channel.id),
    status: channel.status,
    charter: channel.charter as Charter,
    version: channel.roster_version,
    members: map,
    group: (channel.group_state as GroupLogState | null) ?? null,
  };
}

/** Locks a channel row for the rest of the transaction and reads it. */
export async function lockChannel(trx: Transaction<Database>, id: Uint8Array): Promise<ChannelState | undefined> {
  await trx.selectFrom('channels').select('id').where('id', '=', id).forUpdate().executeTakeFirst();
  return readChannel(trx, id);
}

/** Creates a channel from its verified genesis, with its host as the first active member. */
export async function insertChannel(db: Db, group: GroupLogState, genesis: unknown, chainGenesis: Uint8Array): Promise<void> {
  const id = fromBase64Url(group.channel)!;
  const host = group.members[group.host]!;
  await db.kysely.transaction().execute(async (trx) => {
    await trx
      .insertInto('channels')
      .values({ id, status: 'forming', charter: JSON.stringify(group.charter), roster_version: 1, head_seq: 0, chain: chainGenesis, group_state: JSON.stringify(group) })
      .execute();
    await trx.insertInto('group_log').values({ channel_id: id, epoch: 0, entry: JSON.stringify(genesis), state_hash: fromBase64Url(group.stateHash)! }).execute();
    await trx.insertInto('members').values({ channel_id: id, member_key: fromBase64Url(group.host)!, sign_key: fromBase64Url(host.signKey)!, role: 'host', status: 'active', since_version: 1 }).execute();
  });
}

/** Raises the roster version by one and returns the new version. */
export async function bumpVersion(trx: Transaction<Database>, id: Uint8Array): Promise<number> {
  const row = await trx
    .updateTable('channels')
    .set({ roster_version: sql`roster_version + 1` })
    .where('id', '=', id)
    .returning('roster_version')
    .executeTakeFirstOrThrow();
  return row.roster_version;
}
