import { loadConfig } from '../config.js';
import { startRelay } from '../relay.js';
import { EXIT, parseCommandArgs, type Command } from './command.js';

/** Extra time past BACKCHANNEL_SHUTDOWN_TIMEOUT_MS for closing sockets, the pool and embedded PG. */
const CLOSE_SLACK_MS = 5_000;

const HELP = `Usage: backchannel start [--help]

Runs the relay until SIGTERM or SIGINT, then stops gracefully: refuses new connections, tells
clients to reconnect, waits for in-flight commits (at most BACKCHANNEL_SHUTDOWN_TIMEOUT_MS),
flushes delivery cursors and closes the database. A second signal stops at once (exit 1).

Uses PostgreSQL at DATABASE_URL, or an embedded PostgreSQL in BACKCHANNEL_DATA_DIR when unset.
Runs pending migrations first. Prints {"event":"ready","url":...} on stdout once listening;
logs are JSON lines on stdout. Configuration: environment and ./.env (docs/operator.md).`;

/** `backchannel start`: runs the relay until asked to stop. */
export const startCommand: Command = {
  name: 'start',
  summary: 'run the relay (the default command)',
  help: HELP,
  async run(args, io) {
    const { values } = parseCommandArgs(args, {});
    if (values.help === true) {
      io.stdout(`${HELP}\n`);
      return EXIT.ok;
    }
    const config = loadConfig(io.env);
    const relay = await startRelay(config);
    io.stdout(`${JSON.stringify({ event: 'ready', url: relay.url })}\n`);
    await io.stopRequested;
    let timer: NodeJS.Timeout | undefined;
    const overdue = new Promise<number>((resolve) => {
      timer = setTimeout(() => resolve(EXIT.failed), config.BACKCHANNEL_SHUTDOWN_TIMEOUT_MS + CLOSE_SLACK_MS);
    });
    const code = await Promise.race([relay.close().then(() => EXIT.ok), overdue]);
    clearTimeout(timer);
    if (code !== EXIT.ok) io.stderr('backchannel: graceful shutdown did not finish in time; exiting\n');
    return code;
  },
};
