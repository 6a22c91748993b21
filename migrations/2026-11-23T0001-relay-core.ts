import { type Kysely, sql } from 'kysely';

/**
 * Relay core: channels, roster, invitations, prekeys, messages (ciphertext only), receipts and
 * the relay's own keys. Bodies and headers are opaque base64url text exactly as received.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('relay_keys')
    .addColumn('id', 'serial', (c) => c.primaryKey())
    .addColumn('kind', 'text', (c) => c.notNull().check(sql`kind in ('auth', 'record')`))
    .addColumn('public_key', 'bytea', (c) => c.notNull())
    .addColumn('secret_key', 'bytea', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('retired_at', 'timestamptz')
    .execute();
  await sql`create unique index relay_keys_one_current on relay_keys (kind) where retired_at is null`.execute(db);

  await db.schema
    .createTable('channels')
    .addColumn('id', 'bytea', (c) => c.primaryKey())
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('forming', 'open', 'dissolved')`))
    .addColumn('charter', 'jsonb', (c) => c.notNull())
    .addColumn('roster_version', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('head_seq', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('chain', 'bytea', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();

  await db.schema
    .createTable('members')
    .addColumn('channel_id', 'bytea', (c) => c.notNull().references('channels.id').onDelete('cascade'))
    .addColumn('member_key', 'bytea', (c) => c.notNull())
    .addColumn('sign_key', 'bytea', (c) => c.notNull())
    .addColumn('role', 'text', (c) => c.notNull().check(sql`role in ('host', 'party', 'observer')`))
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('pending', 'active', 'left', 'removed')`))
    .addColumn('since_version', 'integer', (c) => c.notNull())
    .addColumn('cursor_seq', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('joined_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('members_pk', ['channel_id', 'member_key'])
    .execute();
  // A member key is per channel: the same key may not sit in two channels.
  await sql`create unique index members_key_unique on members (member_key)`.execute(db);

  await db.schema
    .createTable('approvals')
    .addColumn('channel_id', 'bytea', (c) => c.notNull())
    .addColumn('member_key', 'bytea', (c) => c.notNull())
    .addColumn('approver_key', 'bytea', (c) => c.notNull())
    .addColumn('sig', 'bytea', (c) => c.notNull())
    .addPrimaryKeyConstraint('approvals_pk', ['channel_id', 'member_key', 'approver_key'])
    .addForeignKeyConstraint('approvals_member_fk', ['channel_id', 'member_key'], 'members', ['channel_id', 'member_key'], (c) =>
      c.onDelete('cascade'),
    )
    .execute();

  await db.schema
    .createTable('invites')
    .addColumn('secret_hash', 'bytea', (c) => c.primaryKey())
    .addColumn('channel_id', 'bytea', (c) => c.notNull().references('channels.id').onDelete('cascade'))
    .addColumn('role', 'text', (c) => c.notNull().check(sql`role in ('party', 'observer')`))
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('redeemed_by', 'bytea')
    .execute();

  await db.schema
    .createTable('signed_prekeys')
    .addColumn('member_key', 'bytea', (c) => c.primaryKey())
    .addColumn('channel_id', 'bytea', (c) => c.notNull().references('channels.id').onDelete('cascade'))
    .addColumn('prekey_id', 'bigint', (c) => c.notNull())
    .addColumn('prekey', 'bytea', (c) => c.notNull())
    .addColumn('sig', 'bytea', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('one_time_prekeys')
    .addColumn('member_key', 'bytea', (c) => c.notNull())
    .addColumn('channel_id', 'bytea', (c) => c.notNull().references('channels.id').onDelete('cascade'))
    .addColumn('prekey_id', 'bigint', (c) => c.notNull())
    .addColumn('prekey', 'bytea', (c) => c.notNull())
    .addPrimaryKeyConstraint('one_time_prekeys_pk', ['member_key', 'prekey_id'])
    .execute();

  await db.schema
    .createTable('messages')
    .addColumn('channel_id', 'bytea', (c) => c.notNull().references('channels.id').onDelete('cascade'))
    .addColumn('seq', 'bigint', (c) => c.notNull())
    .addColumn('sender_key', 'bytea', (c) => c.notNull())
    .addColumn('client_msg_id', 'text', (c) => c.notNull())
    .addColumn('headers', 'jsonb', (c) => c.notNull())
    .addColumn('body', 'text', (c) => c.notNull())
    .addColumn('commitment', 'bytea', (c) => c.notNull())
    .addColumn('received_at', 'bigint', (c) => c.notNull())
    .addColumn('chain', 'bytea', (c) => c.notNull())
    .addPrimaryKeyConstraint('messages_pk', ['channel_id', 'seq'])
    .addUniqueConstraint('messages_idempotency', ['channel_id', 'sender_key', 'client_msg_id'])
    .execute();
  await db.schema.createIndex('messages_received_at').on('messages').column('received_at').execute();

  // Receipts outlive the ciphertext (retention purges messages, not receipts) and bind no sender.
  await db.schema
    .createTable('receipts')
    .addColumn('channel_id', 'bytea', (c) => c.notNull().references('channels.id').onDelete('cascade'))
    .addColumn('seq', 'bigint', (c) => c.notNull())
    .addColumn('commitment', 'bytea', (c) => c.notNull())
    .addColumn('received_at', 'bigint', (c) => c.notNull())
    .addColumn('chain', 'bytea', (c) => c.notNull())
    .addPrimaryKeyConstraint('receipts_pk', ['channel_id', 'seq'])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of ['receipts', 'messages', 'one_time_prekeys', 'signed_prekeys', 'invites', 'approvals', 'members', 'channels', 'relay_keys']) {
    await db.schema.dropTable(table).ifExists().execute();
  }
}
