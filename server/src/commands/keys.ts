import { toBase64Url } from '@backchannel/client-sdk/protocol';
import { loadConfig } from '../config.js';
import type { Db } from '../db/connect.js';
import { recordKeyHistory, rotateRelayKey } from '../store/relay-keys.js';
import { EXIT, UsageError, actionOf, parseCommandArgs, table, type Command } from './command.js';
import { requireMigrated, withAdminDatabase } from './database.js';

const HELP = `Usage: backchannel keys show [--json]
       backchannel keys rotate [--kind record|auth] [--json]

  show     print the relay's current public keys and every record-signing key it has
           used (public keys only; secret keys never leave the database)
  rotate   retire the current key of a kind and create a new one (default kind: record).
           Old record keys stay listed so formal records they signed still verify.
           Running relays keep the key they loaded: every node picks the new key up within
           BACKCHANNEL_KEY_RELOAD_MS (retired auth keys stay valid for
           BACKCHANNEL_AUTH_KEY_GRACE_MS).

Options:
  --kind record|auth   which key to rotate: record (Ed25519, signs formal records) or
                       auth (X25519, members authenticate against it)
  --json               print JSON instead of text
  -h, --help`;

/** The current public key of a kind, without ever reading its secret. */
async function currentPublicKey(db: Db, kind: 'auth' | 'record'): Promise<string | null> {
  const row = await db.kysely
    .selectFrom('relay_keys')
    .select('public_key')
    .where('kind', '=', kind)
    .where('retired_at', 'is', null)
    .executeTakeFirst();
  return row === undefined ? null : toBase64Url(new Uint8Array(row.public_key));
}

/** `backchannel keys show|rotate`. */
export const keysCommand: Command = {
  name: 'keys',
  summary: "show or rotate the relay's keys (public keys only)",
  help: HELP,
  async run(args, io) {
    const { values, positionals } = parseCommandArgs(args, { kind: { type: 'string' }, json: { type: 'boolean' } }, true);
    if (values.help === true) {
      io.stdout(`${HELP}\n`);
      return EXIT.ok;
    }
    const action = actionOf('keys', positionals, ['show', 'rotate'] as const);
    const kind = values.kind === undefined ? 'record' : values.kind;
    if (kind !== 'record' && kind !== 'auth') throw new UsageError(`--kind must be record or auth`);
    if (action === 'show' && values.kind !== undefined) throw new UsageError('--kind applies to rotate only');
    const config = loadConfig(io.env);
    return withAdminDatabase(config, async (db) => {
      await requireMigrated(db);
      if (action === 'rotate') {
        const previous = await currentPublicKey(db, kind);
        const kp = await rotateRelayKey(db, kind);
        const next = toBase64Url(kp.publicKey);
        kp.secretKey.fill(0);
        if (values.json === true) io.stdout(`${JSON.stringify({ kind, previous, current: next })}\n`);
        else io.stdout(`rotated the ${kind} key\n  previous ${previous ?? '(none)'}\n  current  ${next}\nevery relay node picks it up within BACKCHANNEL_KEY_RELOAD_MS, no restart needed\n`);
        return EXIT.ok;
      }
      const auth = await currentPublicKey(db, 'auth');
      const history = (await recordKeyHistory(db)).map((k) => ({
        publicKey: toBase64Url(k.publicKey),
        createdAt: k.createdAt.toISOString(),
        retiredAt: k.retiredAt?.toISOString() ?? null,
      }));
      const record = history.find((k) => k.retiredAt === null)?.publicKey ?? null;
      if (values.json === true) {
        io.stdout(`${JSON.stringify({ auth, record, recordHistory: history })}\n`);
        return EXIT.ok;
      }
      const none = '(none yet: created when the relay first starts)';
      io.stdout(`auth key    ${auth ?? none}\nrecord key  ${record ?? none}\n`);
      if (history.length > 0) {
        io.stdout(`\nrecord keys, newest first:\n${table([['PUBLIC KEY', 'CREATED', 'RETIRED'], ...history.map((k) => [k.publicKey, k.createdAt, k.retiredAt ?? '-'])])}\n`);
      }
      return EXIT.ok;
    });
  },
};
