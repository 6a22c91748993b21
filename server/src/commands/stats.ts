import { sql } from 'kysely';
import { loadConfig } from '../config.js';
import type { Db } from '../db/connect.js';
import { countQueuedMessages } from '../store/queue-depth.js';
import { EXIT, UsageError, parseCommandArgs, table, type Command } from './command.js';
import { requireMigrated, withAdminDatabase } from './database.js';

const HELP = `Usage: backchannel stats [--json]

Prints counts only (never keys, content or member identities):
  channels         by status (forming, open, dissolved)
  members          by status (pending, active, left, removed)
  storedMessages   ciphertexts held (until retention purges them)
  queuedMessages   per recipient: stored messages an active party has not acknowledged yet

Options:
  --json   print JSON instead of a table
  -h, --help`;

/** The counts `backchannel stats` prints. */
export interface RelayStats {
  channels: { forming: number; open: number; dissolved: number };
  members: { pending: number; active: number; left: number; removed: number };
  storedMessages: number;
  queuedMessages: number;
}

async function countBy(db: Db, tableName: 'channels' | 'members'): Promise<Map<string, number>> {
  const { rows } = await sql<{ status: string; n: string }>`select status, count(*) as n from ${sql.table(tableName)} group by status`.execute(db.kysely);
  return new Map(rows.map((r) => [r.status, Number(r.n)]));
}

/** Reads the relay's counts. */
export async function relayStats(db: Db): Promise<RelayStats> {
  const [channels, members, stored, queued] = await Promise.all([
    countBy(db, 'channels'),
    countBy(db, 'members'),
    sql<{ n: string }>`select count(*) as n from messages`.execute(db.kysely),
    countQueuedMessages(db, 60_000),
  ]);
  return {
    channels: { forming: channels.get('forming') ?? 0, open: channels.get('open') ?? 0, dissolved: channels.get('dissolved') ?? 0 },
    members: { pending: members.get('pending') ?? 0, active: members.get('active') ?? 0, left: members.get('left') ?? 0, removed: members.get('removed') ?? 0 },
    storedMessages: Number(stored.rows[0]?.n ?? 0),
    queuedMessages: queued,
  };
}

/** `backchannel stats`. */
export const statsCommand: Command = {
  name: 'stats',
  summary: 'count channels, members and queued messages',
  help: HELP,
  async run(args, io) {
    const { values, positionals } = parseCommandArgs(args, { json: { type: 'boolean' } }, true);
    if (values.help === true) {
      io.stdout(`${HELP}\n`);
      return EXIT.ok;
    }
    if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
    const config = loadConfig(io.env);
    const stats = await withAdminDatabase(config, async (db) => {
      await requireMigrated(db);
      return relayStats(db);
    });
    if (values.json === true) {
      io.stdout(`${JSON.stringify(stats)}\n`);
      return EXIT.ok;
    }
    const rows = [['WHAT', 'COUNT']];
    for (const [k, v] of Object.entries(stats.channels)) rows.push([`channels ${k}`, String(v)]);
    for (const [k, v] of Object.entries(stats.members)) rows.push([`members ${k}`, String(v)]);
    rows.push(['messages stored', String(stats.storedMessages)], ['messages queued', String(stats.queuedMessages)]);
    io.stdout(`${table(rows)}\n`);
    return EXIT.ok;
  },
};
