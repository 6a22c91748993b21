import path from 'node:path';
import { loadConfig } from '../config.js';
import { restoreBackup, writeBackup } from '../db/backup.js';
import { EXIT, UsageError, parseCommandArgs, type CliIo, type Command } from './command.js';
import { requireMigrated, withAdminDatabase } from './database.js';

const BACKUP_HELP = `Usage: backchannel backup <file>

Writes every row of the relay's database to <file> (created with mode 0600) from one
consistent snapshot, while relays keep running. Works on DATABASE_URL or the embedded
PostgreSQL in BACKCHANNEL_DATA_DIR (joined if a relay runs on it), on any PostgreSQL version,
without pg_dump. The file holds the relay's secret keys: keep it as secret as the database.

Restore with 'backchannel restore <file>' into an empty database (another PostgreSQL included:
that is how to move from the embedded database to your own).`;

const RESTORE_HELP = `Usage: backchannel restore <file>

Restores a 'backchannel backup' file into an empty database (DATABASE_URL, or the embedded
one in BACKCHANNEL_DATA_DIR): creates the schema of the backup, inserts every row in one
transaction, then applies newer migrations. Refuses a database that already holds relay data
(restore_not_empty) and a backup from a newer relay (backup_invalid). Stop the relays first.`;

function fileArgument(args: string[], help: string, io: CliIo): string | undefined {
  const { values, positionals } = parseCommandArgs(args, {}, true);
  if (values.help === true) {
    io.stdout(`${help}\n`);
    return undefined;
  }
  if (positionals.length !== 1) throw new UsageError('expected exactly one file');
  return path.resolve(io.cwd, positionals[0]!);
}

/** `backchannel backup <file>`. */
export const backupCommand: Command = {
  name: 'backup',
  summary: 'write the database to a file (0600), any PostgreSQL, embedded included',
  help: BACKUP_HELP,
  async run(args, io) {
    const file = fileArgument(args, BACKUP_HELP, io);
    if (file === undefined) return EXIT.ok;
    const config = loadConfig(io.env);
    const { tables, rows } = await withAdminDatabase(config, async (db) => {
      await requireMigrated(db);
      return writeBackup(db, file);
    });
    io.stdout(`backed up ${rows} rows of ${tables} tables to ${file}\n`);
    return EXIT.ok;
  },
};

/** `backchannel restore <file>`. */
export const restoreCommand: Command = {
  name: 'restore',
  summary: 'restore a backup file into an empty database',
  help: RESTORE_HELP,
  async run(args, io) {
    const file = fileArgument(args, RESTORE_HELP, io);
    if (file === undefined) return EXIT.ok;
    const config = loadConfig(io.env);
    const { rows } = await withAdminDatabase(config, (db) => restoreBackup(db, file));
    io.stdout(`restored ${rows} rows from ${file}\n`);
    return EXIT.ok;
  },
};
