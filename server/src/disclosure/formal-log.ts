import { sql, type Transaction } from 'kysely';
import { recordHash, sodium, type FormalRecord, type UnsignedRecord } from '@backchannel/client-sdk';
import { toBase64Url } from '@backchannel/client-sdk/protocol';
import type { Database } from '../db/schema.js';
import type { Q } from '../store/channels.js';
import type { RelayKeyPair } from '../store/relay-keys.js';

/** NOTIFY channel announcing a new formal record: payload is the channel id only. */
export const FORMAL_NOTIFY_CHANNEL = 'bc_formal';

/**
 * Appends a record to a channel's formal log: the next index, chained to the previous record's
 * hash, hashed and signed with the relay's record key. The caller's transaction holds the
 * channel's row lock, so two publications never take the same index.
 */
export async function appendRecord(trx: Transaction<Database>, key: RelayKeyPair, record: Omit<UnsignedRecord, 'index' | 'prev' | 'relayKey'>): Promise<FormalRecord> {
  const channel = Buffer.from(record.channel, 'base64url');
  const last = await trx
    .selectFrom('formal_records')
    .select(['idx', 'hash', 'published_at'])
    .where('channel_id', '=', channel)
    .orderBy('idx', 'desc')
    .limit(1)
    .executeTakeFirst();
  const unsigned: UnsignedRecord = {
    ...record,
    // Formal time never goes back within a log (verifiers refuse a log whose dates do).
    publishedAt: Math.max(record.publishedAt, last === undefined ? 0 : Number(last.published_at)),
    index: last === undefined ? 0 : last.idx + 1,
    prev: toBase64Url(last === undefined ? new Uint8Array(32) : new Uint8Array(last.hash)),
    relayKey: toBase64Url(key.publicKey),
  };
  const hash = recordHash(unsigned);
  // One of the three places Backchannel signs: the relay's signature on a published record.
  const sig = sodium.crypto_sign_detached(hash, key.secretKey);
  const full: FormalRecord = { ...unsigned, hash: toBase64Url(hash), sig: toBase64Url(sig) };
  await trx.insertInto('formal_records').values({ channel_id: channel, idx: full.index, record: JSON.stringify(full), hash, published_at: full.publishedAt }).execute();
  await sql`select pg_notify(${FORMAL_NOTIFY_CHANNEL}, ${record.channel})`.execute(trx);
  return full;
}

/** A channel's formal records, in order (from `from` on; at most `limit` of them when given). */
export async function readRecords(q: Q, channel: Uint8Array, from = 0, limit?: number): Promise<FormalRecord[]> {
  let query = q.selectFrom('formal_records').select('record').where('channel_id', '=', channel).where('idx', '>=', from).orderBy('idx');
  if (limit !== undefined) query = query.limit(limit);
  const rows = await query.execute();
  return rows.map((r) => r.record as FormalRecord);
}
