import type { Kysely } from 'kysely';

/**
 * Record-key hand-overs: when the relay rotates its record-signing key, the retiring key signs
 * the new key and the time it takes over. Verifiers walk this chain from the key a channel's
 * genesis pinned, so a record signed by a key outside its validity period (a retired key used
 * later) fails. Keys from before this migration have no hand-over; a channel pins the key that
 * was current when it was convened.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('relay_keys').addColumn('handover', 'jsonb').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('relay_keys').dropColumn('handover').execute();
}
