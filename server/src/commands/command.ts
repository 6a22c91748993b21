import { parseArgs, type ParseArgsConfig } from 'node:util';

/** Exit codes of the CLI: 0 done, 1 failed (bad configuration, database error), 2 misused. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

/** What a command may touch: its output streams, the environment and the working directory. */
export interface CliIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  /** The process environment merged with `.env` (variables already set win). */
  readonly env: Record<string, string | undefined>;
  readonly cwd: string;
  /** Resolves when the process is asked to stop (SIGTERM/SIGINT); used by long-running commands. */
  readonly stopRequested: Promise<void>;
}

/** One `backchannel <name>` command. */
export interface Command {
  readonly name: string;
  /** One line for the global help. */
  readonly summary: string;
  /** The command's `--help` text. */
  readonly help: string;
  /** Runs with the arguments after the command name; resolves to the exit code. */
  run(args: string[], io: CliIo): Promise<number>;
}

/** A misused command line (unknown command, flag or argument): exit 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** Parsed flags (`--x` booleans, `--x v` strings) and positional arguments. */
export interface ParsedArgs {
  readonly values: Readonly<Record<string, string | boolean | undefined>>;
  readonly positionals: string[];
}

/**
 * `parseArgs` in strict mode with `--help`/`-h` added; its errors become {@link UsageError}s so
 * every command reports a bad flag the same way (one line, exit 2).
 */
export function parseCommandArgs(args: string[], options: Options, allowPositionals = false): ParsedArgs {
  try {
    const { values, positionals } = parseArgs({
      args,
      options: { ...options, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals,
    });
    return { values: values as ParsedArgs['values'], positionals };
  } catch (err) {
    // parseArgs explains at length; its first sentence names the problem.
    throw new UsageError(err instanceof Error ? err.message.split(/\.\s|\n/)[0]! : String(err));
  }
}

/**
 * The one positional argument of a command that takes an action (`keys show`, `migrate up`): a
 * missing, unknown or extra argument is a {@link UsageError} naming the actions.
 */
export function actionOf<A extends string>(command: string, positionals: readonly string[], actions: readonly A[]): A {
  const choices = `${actions.slice(0, -1).join(', ')} or ${actions.at(-1)!}`;
  const [action, ...extra] = positionals;
  if (action === undefined) throw new UsageError(`${command} needs an action: ${choices}`);
  if (extra.length > 0) throw new UsageError(`unexpected argument '${extra[0]}'`);
  if (!(actions as readonly string[]).includes(action)) throw new UsageError(`unknown ${command} action '${action}' (${choices})`);
  return action as A;
}

/** A small fixed-width table (first row is the heading). */
export function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ')).join('\n');
}
