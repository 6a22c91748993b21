import { type Kysely, sql } from 'kysely';

/**
 * Governance: removal votes, charter-amendment votes, and notices to senders of messages that
 * retention purged before every recipient had them.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('removal_votes')
    .addColumn('channel_id', 'bytea', (c) => c.notNull().references('channels.id').onDelete('cascade'))
    .addColumn('member_key', 'bytea', (c) => c.notNull())
    .addColumn('voter_key', 'bytea', (c) => c.notNull())
    .addPrimaryKeyConstraint('removal_votes_pk', ['channel_id', 'member_key', 'voter_key'])
    .execute();

  await db.schema
    .createTable('charter_votes')
    .addColumn('channel_id', 'bytea', (c) => c.notNull().references('channels.id').onDelete('cascade'))
    .addColumn('voter_key', 'bytea', (c) => c.notNull())
    .addColumn('charter', 'jsonb', (c) => c.notNull())
    .addColumn('charter_hash', 'bytea', (c) => c.notNull())
    .addPrimaryKeyConstraint('charter_votes_pk', ['channel_id', 'voter_key'])
    .execute();

  await db.schema
    .createTable('expiry_notices')
    .addColumn('channel_id', 'bytea', (c) => c.notNull().references('channels.id').onDelete('cascade'))
    .addColumn('sender_key', 'bytea', (c) => c.notNull())
    .addColumn('client_msg_id', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('expiry_notices_pk', ['channel_id', 'sender_key', 'client_msg_id'])
    .execute();

  await sql`create index messages_channel_received on messages (channel_id, received_at)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index if exists messages_channel_received`.execute(db);
  for (const table of ['expiry_notices', 'charter_votes', 'removal_votes']) await db.schema.dropTable(table).ifExists().execute();
}
