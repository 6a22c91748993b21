import { type Kysely, sql } from 'kysely';

/**
 * Checkpoints: each party's co-signature of the formal log's head it verified (index, hash, in
 * its verified group state). Append-only like the records they vouch for, and kept after
 * dissolution with them.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('formal_checkpoints')
    .addColumn('channel_id', 'bytea', (c) => c.notNull().references('channels.id').onDelete('cascade'))
    .addColumn('idx', 'integer', (c) => c.notNull())
    .addColumn('signer_key', 'bytea', (c) => c.notNull())
    .addColumn('checkpoint', 'jsonb', (c) => c.notNull())
    .addPrimaryKeyConstraint('formal_checkpoints_pk', ['channel_id', 'idx', 'signer_key'])
    .execute();
  await sql`create trigger formal_checkpoints_append_only before update or delete on formal_checkpoints for each row execute function bc_group_log_append_only()`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop trigger if exists formal_checkpoints_append_only on formal_checkpoints`.execute(db);
  await db.schema.dropTable('formal_checkpoints').execute();
}
