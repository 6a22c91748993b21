import { type Kysely, sql } from 'kysely';

/**
 * Staged disclosure and the formal record. Proposals and consents belong to their channel and go
 * with it on dissolve; formal records belong to no channel row (no foreign key), never change
 * (a trigger refuses UPDATE and DELETE), and outlive the channel.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('disclosures')
    .addColumn('channel_id', 'bytea', (c) => c.notNull().references('channels.id').onDelete('cascade'))
    .addColumn('proposal_id', 'bytea', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull().check(sql`kind in ('communique', 'excerpt')`))
    .addColumn('content_hash', 'bytea', (c) => c.notNull())
    .addColumn('range_from', 'bigint', (c) => c.notNull())
    .addColumn('range_to', 'bigint', (c) => c.notNull())
    .addColumn('release_at', 'bigint', (c) => c.notNull())
    .addColumn('proposer_key', 'bytea', (c) => c.notNull())
    .addColumn('stage', 'text', (c) => c.notNull().check(sql`stage in ('proposed', 'consented', 'scheduled', 'published', 'vetoed', 'withdrawn')`))
    .addColumn('content', 'jsonb')
    .addColumn('record_index', 'integer')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('disclosures_pk', ['channel_id', 'proposal_id'])
    .execute();
  await sql`create index disclosures_scheduled on disclosures (release_at) where stage = 'scheduled'`.execute(db);

  await db.schema
    .createTable('disclosure_consents')
    .addColumn('channel_id', 'bytea', (c) => c.notNull())
    .addColumn('proposal_id', 'bytea', (c) => c.notNull())
    .addColumn('signer_key', 'bytea', (c) => c.notNull())
    .addColumn('sig', 'bytea', (c) => c.notNull())
    .addPrimaryKeyConstraint('disclosure_consents_pk', ['channel_id', 'proposal_id', 'signer_key'])
    .addForeignKeyConstraint('disclosure_consents_fk', ['channel_id', 'proposal_id'], 'disclosures', ['channel_id', 'proposal_id'], (c) => c.onDelete('cascade'))
    .execute();

  await db.schema
    .createTable('formal_records')
    .addColumn('channel_id', 'bytea', (c) => c.notNull())
    .addColumn('idx', 'integer', (c) => c.notNull())
    .addColumn('record', 'jsonb', (c) => c.notNull())
    .addColumn('hash', 'bytea', (c) => c.notNull())
    .addColumn('published_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('formal_records_pk', ['channel_id', 'idx'])
    .execute();
  await sql`
    create function formal_records_append_only() returns trigger language plpgsql as $$
    begin
      raise exception 'formal records are append-only';
    end $$`.execute(db);
  await sql`
    create trigger formal_records_no_change before update or delete on formal_records
    for each row execute function formal_records_append_only()`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop trigger if exists formal_records_no_change on formal_records`.execute(db);
  await sql`drop function if exists formal_records_append_only()`.execute(db);
  for (const table of ['formal_records', 'disclosure_consents', 'disclosures']) await db.schema.dropTable(table).ifExists().execute();
}
