import { ConfigError } from '../config.js';
import { backupCommand, restoreCommand } from './backup.js';
import { compareCommand } from './compare.js';
import { EXIT, UsageError, type CliIo, type Command } from './command.js';
import { loadEnvironment } from './env-file.js';
import { keysCommand } from './keys.js';
import { VERSION } from '../metrics.js';
import { migrateCommand } from './migrate.js';
import { startCommand } from './start.js';
import { statsCommand } from './stats.js';
import { verifyCommand } from './verify.js';

/**
 * Every command, in help order. Later features add theirs here (one file each under
 * `commands/`): `verify` (offline formal-record verification) and `demo`.
 */
export const COMMANDS: readonly Command[] = [startCommand, migrateCommand, keysCommand, statsCommand, backupCommand, restoreCommand, verifyCommand, compareCommand];

function globalHelp(commands: readonly Command[]): string {
  const width = Math.max(...commands.map((c) => c.name.length), 4);
  return `backchannel — the Backchannel relay

Usage: backchannel [command] [options]

Commands:
${commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n')}
  ${'help'.padEnd(width)}  show this help, or a command's: backchannel help <command>

Run 'backchannel <command> --help' for a command's options, 'backchannel --version' for the version.
Configuration comes from the environment and an optional ./.env file (variables already set
win); see docs/operator.md. Exit codes: 0 done, 1 failed (including bad configuration), 2 misused.`;
}

/**
 * Runs the CLI with `argv` (arguments after the program name) and resolves to the exit code;
 * never exits the process itself, so tests can run it in-process.
 */
export async function runCli(argv: string[], io: CliIo, commands: readonly Command[] = COMMANDS): Promise<number> {
  const [first, ...rest] = argv;
  try {
    if (first === '--help' || first === '-h' || first === 'help') {
      const target = first === 'help' ? rest[0] : undefined;
      if (target === undefined) {
        io.stdout(`${globalHelp(commands)}\n`);
        return EXIT.ok;
      }
      const command = commands.find((c) => c.name === target);
      if (command === undefined) throw new UsageError(`unknown command '${target}'`);
      io.stdout(`${command.help}\n`);
      return EXIT.ok;
    }
    if (first === '--version' || first === '-V') {
      io.stdout(`backchannel ${VERSION}\n`);
      return EXIT.ok;
    }
    if (first !== undefined && first.startsWith('-')) throw new UsageError(`unknown option '${first}'`);
    const name = first ?? 'start';
    const command = commands.find((c) => c.name === name);
    if (command === undefined) throw new UsageError(`unknown command '${name}'`);
    const env = await loadEnvironment(io.cwd, io.env);
    return await command.run(first === undefined ? [] : rest, { ...io, env });
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr(`backchannel: ${err.message}\nRun 'backchannel --help' for usage.\n`);
      return EXIT.usage;
    }
    // A ConfigError names the variable and never its value (DATABASE_URL holds a password).
    const message = err instanceof ConfigError || err instanceof Error ? err.message : String(err);
    io.stderr(`backchannel: ${message}\n`);
    return EXIT.failed;
  }
}
