import { type Kysely, sql } from 'kysely';

/**
 * The verifiable group log. Membership, roles, the charter and dissolution become a hash-chained
 * log of signed changes (`group_log`) that every client verifies; the relay keeps a projection of
 * the verified state (`channels.group_state`, `members`) only to route and to refuse early.
 * Signatures on a proposal wait in `group_signatures` until the proposal has all it needs.
 * Invitations are public keys the host signed (`invites.grant`); the secret never reaches the
 * relay. Votes and approvals of the old roster are gone with their tables.
 *
 * Channels convened before this migration have no genesis (`group_state` is null): the relay
 * refuses every request on them with `channel_legacy`.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('group_log')
    .addColumn('channel_id', 'bytea', (c) => c.notNull().references('channels.id').onDelete('cascade'))
    .addColumn('epoch', 'integer', (c) => c.notNull())
    .addColumn('entry', 'jsonb', (c) => c.notNull())
    .addColumn('state_hash', 'bytea', (c) => c.notNull())
    .addPrimaryKeyConstraint('group_log_pk', ['channel_id', 'epoch'])
    .execute();
  await sql`
    create function bc_group_log_append_only() returns trigger language plpgsql as $$
    begin
      raise exception 'the group log is append-only' using errcode = 'BC403';
    end $$`.execute(db);
  await sql`create trigger group_log_append_only before update on group_log for each row execute function bc_group_log_append_only()`.execute(db);

  await db.schema
    .createTable('group_signatures')
    .addColumn('channel_id', 'bytea', (c) => c.notNull().references('channels.id').onDelete('cascade'))
    .addColumn('proposal_hash', 'bytea', (c) => c.notNull())
    .addColumn('proposal', 'jsonb', (c) => c.notNull())
    .addColumn('signer_key', 'bytea', (c) => c.notNull())
    .addColumn('sig', 'bytea', (c) => c.notNull())
    .addPrimaryKeyConstraint('group_signatures_pk', ['channel_id', 'proposal_hash', 'signer_key'])
    .execute();

  await db.schema.alterTable('channels').addColumn('group_state', 'jsonb').execute();
  await db.schema.alterTable('members').addColumn('seat', 'jsonb').execute();
  await db.schema.alterTable('invites').renameColumn('secret_hash', 'invite_key').execute();
  await db.schema.alterTable('invites').addColumn('grant', 'jsonb').execute();
  for (const table of ['approvals', 'removal_votes', 'charter_votes']) await db.schema.dropTable(table).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('approvals')
    .addColumn('channel_id', 'bytea', (c) => c.notNull())
    .addColumn('member_key', 'bytea', (c) => c.notNull())
    .addColumn('approver_key', 'bytea', (c) => c.notNull())
    .addColumn('sig', 'bytea', (c) => c.notNull())
    .addPrimaryKeyConstraint('approvals_pk', ['channel_id', 'member_key', 'approver_key'])
    .addForeignKeyConstraint('approvals_member_fk', ['channel_id', 'member_key'], 'members', ['channel_id', 'member_key'], (c) => c.onDelete('cascade'))
    .execute();
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
  await db.schema.alterTable('invites').dropColumn('grant').execute();
  await db.schema.alterTable('invites').renameColumn('invite_key', 'secret_hash').execute();
  await db.schema.alterTable('members').dropColumn('seat').execute();
  await db.schema.alterTable('channels').dropColumn('group_state').execute();
  await db.schema.dropTable('group_signatures').execute();
  await sql`drop trigger if exists group_log_append_only on group_log`.execute(db);
  await sql`drop function if exists bc_group_log_append_only()`.execute(db);
  await db.schema.dropTable('group_log').execute();
}
