import { sql, type Transaction } from 'kysely';
import { type Charter, type RosterMember, toBase64Url } from '@backchannel/client-sdk/protocol';
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
}

/** One member of a channel. */
export interface MemberState {
  readonly key: Uint8Array;
  readonly keyText: string;
  readonly signKey: Uint8Array;
  readonly role: 'host' | 'party' | 'observer';
  readonly status: 'pending' | 'active' | 'left' | 'removed';
  readonly sinceVersion: number;
  readonly approvals: ReadonlyMap<string, Uint8Array>;
}

/** A kysely handle or an open transaction. */
export type Q = Db['kysely'] | Transaction<Database>;

/** Reads a channel and its roster; undefined when it does not exist. */
export async function readChannel(q: Q, id: Uint8Array): Promise<ChannelState | undefined> {
  const channel = await q.selectFrom('channels').select(['id', 'status', 'charter', 'roster_version']).where('id', '=', id).executeTakeFirst();
  if (channel === undefined) return undefined;
  const [members, approvals] = await Promise.all([
    q.selectFrom('members').select(['member_key', 'sign_key', 'role', 'status', 'since_version']).where('channel_id', '=', id).orderBy('joined_at').execute(),
    q.selectFrom('approvals').select(['member_key', 'approver_key', 'sig']).where('channel_id', '=', id).execute(),
  ]);
  const byMember = new Map<string, Map<string, Uint8Array>>();
  for (const a of approvals) {
    const k = toBase64Url(a.member_key);
    let m = byMember.get(k);
    if (m === undefined) byMember.set(k, (m = new Map()));
    m.set(toBase64Url(a.approver_key), new Uint8Array(a.sig));
  }
  const map = new Map<string, MemberState>();
  for (const m of members) {
    const keyText = toBase64Url(m.member_key);
    map.set(keyText, {
      key: new Uint8Array(m.member_key),
      keyText,
      signKey: new Uint8Array(m.sign_key),
      role: m.role,
      status: m.status,
      sinceVersion: m.since_version,
      approvals: byMember.get(keyText) ?? new Map(),
    });
  }
  return {
    id: new Uint8Array(channel.id),
    idText: toBase64Url(channel.id),
    status: channel.status,
    charter: channel.charter as Charter,
    version: channel.roster_version,
    members: map,
  };
}

/** Locks a channel row for the rest of the transaction and reads it. */
export async function lockChannel(trx: Transaction<Database>, id: Uint8Array): Promise<ChannelState | undefined> {
  await trx.selectFrom('channels').select('id').where('id', '=', id).forUpdate().executeTakeFirst();
  return readChannel(trx, id);
}

/** The roster as the wire shows it. */
export function rosterMembers(state: ChannelState): RosterMember[] {
  return [...state.members.values()].map((m) => ({
    key: m.keyText,
    signKey: toBase64Url(m.signKey),
    role: m.role,
    status: m.status,
    sinceVersion: m.sinceVersion,
    approvals: [...m.approvals].map(([by, sig]) => ({ by, sig: toBase64Url(sig) })),
  }));
}

/** Creates a channel with its host as the first active member. */
export async function insertChannel(db: Db, id: Uint8Array, charter: Charter, host: Uint8Array, hostSignKey: Uint8Array, genesis: Uint8Array): Promise<void> {
  await db.kysely.transaction().execute(async (trx) => {
    await trx.insertInto('channels').values({ id, status: 'forming', charter: JSON.stringify(charter), roster_version: 1, head_seq: 0, chain: genesis }).execute();
    await trx.insertInto('members').values({ channel_id: id, member_key: host, sign_key: hostSignKey, role: 'host', status: 'active', since_version: 1 }).execute();
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
