import { runCli } from './commands/run-cli.js';

/**
 * A signal repeated within this window is the same stop: Ctrl-C reaches both the `backchannel`
 * bin and the relay it runs (one process group), and the bin forwards it too; a supervisor may
 * signal the whole group. Only a signal after the window forces an exit.
 */
const REPEAT_WINDOW_MS = 2_000;

// The process entry point: wires signals and streams to runCli, then exits with its code.
// The first SIGTERM/SIGINT asks the running command to stop gracefully; one after the window forces it.
let firstSignalAt: number | undefined;
const stop = new Promise<void>((resolve) => {
  const onSignal = (signal: NodeJS.Signals): void => {
    const now = performance.now();
    if (firstSignalAt === undefined) {
      firstSignalAt = now;
      resolve();
      return;
    }
    if (now - firstSignalAt < REPEAT_WINDOW_MS) return;
    process.stderr.write(`backchannel: ${signal} again, stopping now\n`);
    process.exit(1);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
});

runCli(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  env: process.env,
  cwd: process.cwd(),
  stopRequested: stop,
}).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`backchannel: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
