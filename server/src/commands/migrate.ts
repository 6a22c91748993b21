import type { MigrationResult } from 'kysely';
import { loadConfig } from '../config.js';
import { migrateDown, migrateToLatest, migrationStatus } from '../db/migrate.js';
import { EXIT, UsageError, actionOf, parseCommandArgs, table, type Command } from './command.js';
import { withAdminDatabase } from './database.js';

const HELP = `Usage: backchannel migrate <up|down|status> [--json] [--yes]

  up       apply every pending migration (the relay also does this when it starts)
  down     revert the most recent migration; it drops tables and their data, so it
           needs --yes
  status   list migrations and when each was applied

Options:
  --json   print JSON instead of text
  --yes    confirm \`down\`
  -h, --help

Works on DATABASE_URL, or the embedded PostgreSQL in BACKCHANNEL_DATA_DIR.`;

function describe(results: MigrationResult[] | undefined, verb: string, none: string): string[] {
  const done = (results ?? []).filter((r) => r.status === 'Success');
  return done.length === 0 ? [none] : done.map((r) => `${verb} ${r.migrationName}`);
}

/** `backchannel migrate up|down|status`. */
export const migrateCommand: Command = {
  name: 'migrate',
  summary: 'apply, revert or list database migrations',
  help: HELP,
  async run(args, io) {
    const { values, positionals } = parseCommandArgs(args, { json: { type: 'boolean' }, yes: { type: 'boolean' } }, true);
    if (values.help === true) {
      io.stdout(`${HELP}\n`);
      return EXIT.ok;
    }
    const action = actionOf('migrate', positionals, ['up', 'down', 'status'] as const);
    if (action === 'down' && values.yes !== true) {
      throw new UsageError('migrate down drops tables and their data; run it again with --yes to confirm');
    }
    const config = loadConfig(io.env);
    return withAdminDatabase(config, async (db) => {
      if (action === 'status') {
        const rows = await migrationStatus(db);
        if (values.json === true) {
          io.stdout(`${JSON.stringify(rows.map((r) => ({ name: r.name, appliedAt: r.executedAt?.toISOString() ?? null })))}\n`);
        } else {
          io.stdout(`${table([['MIGRATION', 'APPLIED'], ...rows.map((r) => [r.name, r.executedAt?.toISOString() ?? 'pending'])])}\n`);
        }
        return EXIT.ok;
      }
      const result = action === 'up' ? await migrateToLatest(db) : await migrateDown(db);
      const names = (result.results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
      if (values.json === true) io.stdout(`${JSON.stringify({ [action === 'up' ? 'applied' : 'reverted']: names })}\n`);
      else {
        const lines = action === 'up' ? describe(result.results, 'applied', 'already up to date') : describe(result.results, 'reverted', 'nothing to revert');
        io.stdout(`${lines.join('\n')}\n`);
      }
      return EXIT.ok;
    });
  },
};
