import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import pg from 'pg';
import type { EmbeddedCredentials } from './data-dir.js';

/** The superuser and password of data folders made before roles were provisioned. */
export const LEGACY_ADMIN = { user: 'backchannel', password: 'backchannel-local' } as const;

/** `postgres://user:password@127.0.0.1:port/database`. */
export function localUrl(user: string, password: string, port: number, database: string): string {
  return `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${port}/${encodeURIComponent(database)}`;
}

/**
 * A SCRAM-SHA-256 verifier (RFC 5802/7677, PostgreSQL's stored format), so `ALTER ROLE …
 * PASSWORD` never carries the password itself to the server or its logs.
 */
export function scramVerifier(password: string, iterations = 4096): string {
  const salt = randomBytes(16);
  const salted = pbkdf2Sync(password.normalize('NFKC'), salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

async function connect(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

/**
 * Connects as the superuser: with the folder's password, or, for a folder made before it had
 * one, with the old fixed password (which provisioning then replaces).
 */
async function connectAdmin(c: EmbeddedCredentials, port: number, database: string): Promise<pg.Client> {
  try {
    return await connect(localUrl(c.adminUser, c.adminPassword, port, database));
  } catch (err) {
    if ((err as { code?: string }).code !== '28P01' || c.adminUser !== LEGACY_ADMIN.user) throw err;
    return connect(localUrl(LEGACY_ADMIN.user, LEGACY_ADMIN.password, port, database));
  }
}

/**
 * Makes the roles match the credentials file, on every start (idempotent): the superuser's
 * password, the relay's role (login, no superuser, no CREATEDB/CREATEROLE/REPLICATION/BYPASSRLS),
 * its database, and the relay's ownership of every table, sequence and function in it (a folder
 * from before this step had them owned by the superuser).
 */
export async function provisionRoles(c: EmbeddedCredentials, port: number): Promise<void> {
  const admin = await connectAdmin(c, port, 'postgres');
  const relay = admin.escapeIdentifier(c.relayUser);
  try {
    await admin.query(`alter role ${admin.escapeIdentifier(c.adminUser)} with password ${admin.escapeLiteral(scramVerifier(c.adminPassword))}`);
    const role = await admin.query('select 1 from pg_roles where rolname = $1', [c.relayUser]);
    if (role.rowCount === 0) await admin.query(`create role ${relay}`);
    await admin.query(`alter role ${relay} with login nosuperuser nocreatedb nocreaterole noreplication nobypassrls password ${admin.escapeLiteral(scramVerifier(c.relayPassword))}`);
    const db = await admin.query('select 1 from pg_database where datname = $1', [c.database]);
    if (db.rowCount === 0) await admin.query(`create database ${admin.escapeIdentifier(c.database)} owner ${relay}`);
  } finally {
    await admin.end();
  }
  const inDb = await connectAdmin(c, port, c.database);
  try {
    await inDb.query(`grant usage, create on schema public to ${relay}`);
    const { rows } = await inDb.query<{ what: string; name: string }>(
      `select case when c.relkind = 'S' then 'sequence' when c.relkind in ('v') then 'view' else 'table' end as what,
              format('%I.%I', n.nspname, c.relname) as name
         from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'public' and c.relkind in ('r', 'p', 'v', 'S')
          and c.relowner <> (select oid from pg_roles where rolname = $1)
          and not exists (select 1 from pg_depend d where d.objid = c.oid and d.deptype in ('a', 'i') and c.relkind = 'S')
       union all
       select 'routine', format('%I.%I(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid))
         from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where n.nspname = 'public' and p.proowner <> (select oid from pg_roles where rolname = $1)`,
      [c.relayUser],
    );
    for (const r of rows) await inDb.query(`alter ${r.what} ${r.name} owner to ${relay}`);
  } finally {
    await inDb.end();
  }
}
