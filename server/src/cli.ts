import { runCli } from './commands/run-cli.js';

// The process entry point: wires signals and streams to runCli, then exits with its code.
// The first SIGTERM/SIGINT asks the running command to stop gracefully; a second one forces it.
let stopRequested = false;
const stop = new Promise<void>((resolve) => {
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopRequested) {
      process.stderr.write(`backchannel: ${signal} again, stopping now\n`);
      process.exit(1);
    }
    stopRequested = true;
    resolve();
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
