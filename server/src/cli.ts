import { ConfigError, loadConfig } from './config.js';
import { startRelay } from './relay.js';

const HELP = `backchannel — the Backchannel relay

Usage: backchannel <command> [options]

Commands:
  start      run the relay (default)
  help       show this help

Configuration comes from the environment (see docs/operator.md).`;

async function start(): Promise<number> {
  const config = loadConfig(process.env);
  const relay = await startRelay(config);
  process.stdout.write(`${JSON.stringify({ event: 'ready', url: relay.url })}\n`);
  await new Promise<void>((resolve) => {
    const stop = (): void => resolve();
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  await relay.close();
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const command = argv[0] ?? 'start';
  switch (command) {
    case 'start':
      return start();
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(`${HELP}\n`);
      return 0;
    default:
      process.stderr.write(`unknown command: ${command}\n${HELP}\n`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof ConfigError) process.stderr.write(`backchannel: ${err.message}\n`);
    else process.stderr.write(`backchannel: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
