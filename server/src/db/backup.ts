import { createReadStream, createWriteStream } from 'node:fs';
import { chmod } from 'node:fs/promises';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import type pg from 'pg';
import { OperatorError } from '../operator-error.js';
import type { Db } from './connect.js';
import { migrateTo, migrateToLatest, migrationStatus } from './migrate.js';

/** The first line of a backup file. */
interface BackupHeader {
  format: 'backchannel-backup';
  version: 1;
  createdAt: string;
  /** The migrations applied in the database it was taken from, in order. */
  migrations: string[];
}

/** Rows inserted per statement when restoring. */
const BATCH = 500;

/** The relay's tables (kysely's own excepted), parents before the tables that reference them. */
async function tablesInOrder(client: pg.PoolClient): Promise<string[]> {
  const { rows } = await client.query<{ name: string; parents: string[] | null }>(`
    select c.relname as name,
           array(select distinct p.relname::text from pg_constraint f join pg_class p on p.oid = f.confrelid
                  where f.conrelid = c.oid and f.contype = 'f' and f.confrelid <> c.oid) as parents
      from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where n.nspname = 'public' and c.relkind in ('r', 'p') and c.relname not like 'kysely_migration%'
     order by c.relname`);
  const pending = new Map(rows.map((r) => [r.name, new Set(r.parents ?? [])]));
  const out: string[] = [];
  while (pending.size > 0) {
    const ready = [...pending].filter(([, parents]) => [...parents].every((p) => !pending.has(p))).map(([name]) => name);
    if (ready.length === 0) throw new Error(`circular foreign keys among ${[...pending.keys()].join(', ')}`);
    for (const name of ready) {
      out.push(name);
      pending.delete(name);
    }
  }
  return out;
}

/** Refuses a database with a row in any relay table; returns the tables, parents first. */
async function assertEmpty(client: pg.PoolClient): Promise<string[]> {
  const tables = await tablesInOrder(client);
  for (const table of tables) {
    const { rows } = await client.query(`select 1 from ${client.escapeIdentifier(table)} limit 1`);
    if (rows.length > 0) throw new OperatorError('restore_not_empty', `the database already holds relay data (table ${table}): restore into an empty database`);
  }
  return tables;
}

/**
 * Writes every row of the relay's tables to `file` (created 0600: it holds the relay's secret
 * keys) from one consistent snapshot, while relays keep running. Each row is PostgreSQL's own
 * JSON of it (`to_jsonb`), never parsed here, so every type round-trips exactly. Works on any
 * PostgreSQL version the relay runs on, embedded included, with no client tools.
 */
export async function writeBackup(db: Db, file: string): Promise<{ tables: number; rows: number }> {
  const out = createWriteStream(file, { mode: 0o600 });
  await once(out, 'open');
  await chmod(file, 0o600); // an existing file keeps its old mode otherwise
  const write = async (text: string): Promise<void> => {
    if (!out.write(text)) await once(out, 'drain');
  };
  const client = await db.pool.connect();
  let rows = 0;
  let tables: string[] = [];
  try {
    await client.query('begin transaction isolation level repeatable read read only');
    const header: BackupHeader = {
      format: 'backchannel-backup',
      version: 1,
      createdAt: new Date().toISOString(),
      migrations: (await migrationStatus(db)).filter((m) => m.executedAt !== undefined).map((m) => m.name),
    };
    await write(`${JSON.stringify(header)}\n`);
    tables = await tablesInOrder(client);
    for (const table of tables) {
      const name = client.escapeIdentifier(table);
      await client.query(`declare rows_cursor no scroll cursor for select to_jsonb(t)::text as row from ${name} t`);
      for (;;) {
        const batch = await client.query<{ row: string }>('fetch 1000 from rows_cursor');
        for (const r of batch.rows) await write(`${table}\t${r.row}\n`);
        rows += batch.rows.length;
        if (batch.rows.length < 1000) break;
      }
      await client.query('close rows_cursor');
    }
    await client.query('commit');
  } catch (err) {
    await client.query('rollback').catch(() => undefined);
    throw err;
  } finally {
    client.release();
    out.end();
    await once(out, 'close');
  }
  return { tables: tables.length, rows };
}

/**
 * Restores a {@link writeBackup} file into an empty database: migrates it to the backup's
 * schema, inserts every row in one transaction (parents first), sets sequences past the restored
 * ids, then applies any newer migrations. Refuses a database that already holds relay data.
 */
export async function restoreBackup(db: Db, file: string): Promise<{ rows: number }> {
  const lines = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
  const iterator = lines[Symbol.asyncIterator]();
  const first = await iterator.next().catch((cause: unknown) => {
    throw new OperatorError('backup_invalid', `cannot read ${file} (${(cause as NodeJS.ErrnoException).code ?? 'error'})`, { cause });
  });
  let header: BackupHeader;
  try {
    header = JSON.parse(first.done === true ? '' : first.value) as BackupHeader;
  } catch {
    throw new OperatorError('backup_invalid', `${file} is not a Backchannel backup`);
  }
  if (header.format !== 'backchannel-backup' || header.version !== 1) throw new OperatorError('backup_invalid', `${file} is not a Backchannel backup (version 1)`);
  const known = (await migrationStatus(db)).map((m) => m.name);
  const unknown = header.migrations.filter((m) => !known.includes(m));
  if (unknown.length > 0) throw new OperatorError('backup_invalid', `${file} comes from a newer relay (migration ${unknown[0]} is unknown here): upgrade first`);

  // Checked before any migration runs: migrating down a database with data would drop it.
  const check = await db.pool.connect();
  try {
    await assertEmpty(check);
  } finally {
    check.release();
  }
  const last = header.migrations.at(-1);
  if (last !== undefined) await migrateTo(db, last);
  const client = await db.pool.connect();
  let rows = 0;
  try {
    await client.query('begin');
    const tables = await assertEmpty(client);
    let table = '';
    let batch: string[] = [];
    const flush = async (): Promise<void> => {
      if (batch.length === 0) return;
      const name = client.escapeIdentifier(table);
      await client.query(`insert into ${name} select * from jsonb_populate_recordset(null::${name}, $1::jsonb)`, [`[${batch.join(',')}]`]);
      rows += batch.length;
      batch = [];
    };
    for (let next = await iterator.next(); next.done !== true; next = await iterator.next()) {
      const tab = next.value.indexOf('\t');
      if (tab <= 0) throw new OperatorError('backup_invalid', `${file}: a line is not "table<TAB>row"`);
      const rowTable = next.value.slice(0, tab);
      if (!tables.includes(rowTable)) throw new OperatorError('backup_invalid', `${file}: unknown table ${rowTable}`);
      if (rowTable !== table || batch.length >= BATCH) {
        await flush();
        table = rowTable;
      }
      batch.push(next.value.slice(tab + 1));
    }
    await flush();
    // Serial and identity columns continue after the restored ids.
    const { rows: serials } = await client.query<{ seq: string; tab: string; col: string }>(`
      select pg_get_serial_sequence(format('%I.%I', table_schema, table_name), column_name) as seq,
             format('%I.%I', table_schema, table_name) as tab, quote_ident(column_name) as col
        from information_schema.columns
       where table_schema = 'public' and (column_default like 'nextval(%' or is_identity = 'YES')`);
    for (const s of serials) {
      if (s.seq !== null) await client.query(`select setval($1, coalesce((select max(${s.col}) from ${s.tab}), 0) + 1, false)`, [s.seq]);
    }
    await client.query('commit');
  } catch (err) {
    await client.query('rollback').catch(() => undefined);
    throw err;
  } finally {
    client.release();
    lines.close();
  }
  await migrateToLatest(db);
  return { rows };
}
