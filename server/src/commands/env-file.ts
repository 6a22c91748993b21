import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ConfigError } from '../config.js';

const KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

function unquoteDouble(raw: string): string {
  return raw.replace(/\\([nrt"\\$])/g, (_m, c: string) => (c === 'n' ? '\n' : c === 'r' ? '\r' : c === 't' ? '\t' : c));
}

/**
 * Parses a `.env` file: `KEY=VALUE` lines, an optional `export ` prefix, `#` comments (whole
 * lines, or after whitespace behind an unquoted value), `'literal'` and `"escaped"` values.
 * A malformed line throws a {@link ConfigError} naming its line number, never its content.
 */
export function parseEnvFile(text: string, fileName = '.env'): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    const bad = (why: string) => new ConfigError(`invalid ${fileName} line ${i + 1}: ${why}`);
    const body = line.startsWith('export ') ? line.slice(7).trimStart() : line;
    const eq = body.indexOf('=');
    if (eq <= 0) throw bad('expected KEY=VALUE');
    const key = body.slice(0, eq).trim();
    if (!KEY.test(key)) throw bad('the name must be letters, digits and underscores');
    let rest = body.slice(eq + 1).trim();
    let value: string;
    const quote = rest[0];
    if (quote === '"' || quote === "'") {
      // A closing quote not preceded by a backslash (single quotes take no escapes).
      let end = 1;
      while (end < rest.length && !(rest[end] === quote && (quote === "'" || rest[end - 1] !== '\\'))) end++;
      if (end >= rest.length) throw bad('unterminated quoted value');
      const inner = rest.slice(1, end);
      rest = rest.slice(end + 1).trim();
      if (rest !== '' && !rest.startsWith('#')) throw bad('unexpected text after the closing quote');
      value = quote === '"' ? unquoteDouble(inner) : inner;
    } else {
      const comment = rest.search(/\s#/);
      value = (comment === -1 ? rest : rest.slice(0, comment)).trim();
    }
    out[key] = value;
  }
  return out;
}

/**
 * The environment the CLI runs with: `.env` in `cwd` (if any) under the process environment, so
 * a variable already set always wins over the file.
 */
export async function loadEnvironment(cwd: string, env: Record<string, string | undefined>): Promise<Record<string, string | undefined>> {
  let text: string;
  try {
    text = await readFile(path.join(cwd, '.env'), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { ...env };
    throw new ConfigError(`cannot read .env: ${(err as NodeJS.ErrnoException).code ?? 'unreadable'}`);
  }
  const merged: Record<string, string | undefined> = parseEnvFile(text);
  for (const [k, v] of Object.entries(env)) if (v !== undefined) merged[k] = v;
  return merged;
}
