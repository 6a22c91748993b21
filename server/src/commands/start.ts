import { Writable } from 'node:stream';
import { loadConfig, unknownVariables } from '../config.js';
import { createLogger } from '../logger.js';
import { OperatorError } from '../operator-error.js';
import { startRelay } from '../relay.js';
import { EXIT, parseCommandArgs, type Command } from './command.js';

/** Extra time past the drain delay and BACKCHANNEL_SHUTDOWN_TIMEOUT_MS for closing sockets, the pool and embedded PG. */
const CLOSE_SLACK_MS = 5_000;

const HELP = `Usage: backchannel start [--help]

Runs the relay until SIGTERM or SIGINT, then stops gracefully: /readyz answers 503 for
BACKCHANNEL_DRAIN_DELAY_MS, then it refuses new connections, tells clients to reconnect, waits
for in-flight commits (at most BACKCHANNEL_SHUTDOWN_TIMEOUT_MS), flushes delivery cursors and
closes the database. A signal during startup undoes what was started and exits 0. Repeats of a
signal within 2 s are the same stop; one after that stops at once (exit 1).

Uses PostgreSQL at DATABASE_URL, or an embedded PostgreSQL in BACKCHANNEL_DATA_DIR when unset.
Runs pending migrations first. Prints {"event":"ready","url":...} on stdout once listening;
logs, fatal errors included, are JSON lines on stdout. Configuration: environment and ./.env
(docs/operator.md).`;

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
    const out = new Writable({
      write(chunk: Buffer, _encoding, done) {
        io.stdout(chunk.toString());
        done();
      },
    });
    const level = io.env.BACKCHANNEL_LOG_LEVEL;
    let logger = createLogger(level !== undefined && /^(fatal|error|warn|info|debug|trace|silent)$/.test(level) ? level : 'info', out);
    const aborted = new AbortController();
    void io.stopRequested.then(() => aborted.abort());
    try {
      const config = loadConfig(io.env);
      logger = createLogger(config.BACKCHANNEL_LOG_LEVEL, out);
      for (const name of unknownVariables(io.env)) logger.warn({ event: 'config_unknown_variable', variable: name }, `${name} is not a Backchannel setting (misspelt?); it is ignored`);
      const relay = await startRelay(config, { logDestination: out, signal: aborted.signal });
      io.stdout(`${JSON.stringify({ event: 'ready', url: relay.url })}\n`);
      await io.stopRequested;
      let timer: NodeJS.Timeout | undefined;
      const overdue = new Promise<number>((resolve) => {
        timer = setTimeout(() => resolve(EXIT.failed), config.BACKCHANNEL_DRAIN_DELAY_MS + config.BACKCHANNEL_SHUTDOWN_TIMEOUT_MS + CLOSE_SLACK_MS);
      });
      const code = await Promise.race([relay.close().then(() => EXIT.ok), overdue]);
      clearTimeout(timer);
      if (code !== EXIT.ok) logger.fatal({ event: 'shutdown_overdue' }, 'graceful shutdown did not finish in time; exiting');
      return code;
    } catch (err) {
      if (OperatorError.is(err, 'stopped_before_ready')) {
        logger.info({ event: 'relay_stopped', beforeReady: true }, 'stopped before the relay was ready');
        return EXIT.ok;
      }
      // One JSON line a log collector keeps; run-cli also prints the message to stderr.
      const code = err instanceof OperatorError || (err instanceof Error && 'code' in err && typeof err.code === 'string') ? (err as { code: string }).code : 'internal';
      logger.fatal({ event: 'start_failed', code }, err instanceof Error ? err.message : String(err));
      throw err;
    }
  },
};
