import { type Kysely, sql } from 'kysely';

/**
 * Authentication nonces used up, shared by every relay node: a nonce is inserted before its
 * proof is checked, so it is accepted once across the cluster and a failed proof uses it up
 * too. Rows are deleted once expired (nonces live 60 s), by the insert that follows.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('auth_nonces')
    .addColumn('nonce', 'bytea', (c) => c.primaryKey())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute();
  await sql`create index auth_nonces_expires_at on auth_nonces (expires_at)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('auth_nonces').execute();
}
