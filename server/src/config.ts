import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { LIMITS } from '@backchannel/client-sdk/protocol';
import { OperatorError } from './operator-error.js';

/** A decimal integer in [min, max]: no blanks, signs, hex (`0x4A1B`), exponents or fractions. */
const int = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d{1,10}$/, 'must be a decimal integer')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

/** A browser origin exactly as a browser sends it: `scheme://host[:port]`, nothing more. */
const origin = z.string().refine((o) => {
  try {
    const url = new URL(o);
    return (url.protocol === 'https:' || url.protocol === 'http:') && url.origin === o;
  } catch {
    return false;
  }
}, 'each origin must be scheme://host[:port] with no path or trailing slash');

/** Every environment variable the relay reads, with its default. Documented in docs/operator.md. */
export const ConfigSchema = z.object({
  BACKCHANNEL_HOST: z.string().min(1).default('127.0.0.1'),
  BACKCHANNEL_PORT: int(0, 65_535).default(8787),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL')
    .optional(),
  BACKCHANNEL_DATA_DIR: z.string().min(1).default('./data'),
  BACKCHANNEL_EMBEDDED_PG_PORT: int(1, 65_535).default(54_329),
  BACKCHANNEL_DB_POOL: int(2, 200).default(10),
  BACKCHANNEL_MAX_PAYLOAD: int(1024, 16 * 1024 * 1024).default(LIMITS.maxFrameBytes),
  BACKCHANNEL_HEARTBEAT_MS: int(100, 600_000).default(30_000),
  BACKCHANNEL_SLOW_CONSUMER_BYTES: int(16 * 1024, 1024 * 1024 * 1024).default(1024 * 1024),
  BACKCHANNEL_RATE_PER_SEC: int(1, 1_000_000).default(2_000),
  BACKCHANNEL_RATE_BURST: int(1, 1_000_000).default(4_000),
  BACKCHANNEL_MAX_PENDING_SENDS: int(1, 10_000_000).default(4_096),
  BACKCHANNEL_MAX_QUEUE_DELAY_MS: int(1, 60_000).default(50),
  BACKCHANNEL_ORIGINS: z
    .string()
    .optional()
    .transform((v) => (v === undefined || v.trim() === '' ? undefined : v.split(',').map((o) => o.trim())))
    .pipe(z.array(origin).optional()),
  BACKCHANNEL_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  BACKCHANNEL_SHUTDOWN_TIMEOUT_MS: int(100, 300_000).default(10_000),
  BACKCHANNEL_DRAIN_DELAY_MS: int(0, 300_000).default(0),
  BACKCHANNEL_RETENTION_SWEEP_MS: int(1_000, 86_400_000).default(60_000),
  BACKCHANNEL_DURABILITY_CHECK_MS: int(100, 3_600_000).default(5_000),
  BACKCHANNEL_METRICS_HOST: z.string().min(1).default('127.0.0.1'),
  BACKCHANNEL_METRICS_PORT: int(0, 65_535).optional(),
  BACKCHANNEL_METRICS_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  BACKCHANNEL_HTTP_RATE_PER_SEC: int(1, 1_000_000).default(50),
  BACKCHANNEL_HTTP_RATE_BURST: int(1, 1_000_000).default(200),
  BACKCHANNEL_AUTH_KEY_GRACE_MS: int(0, 86_400_000).default(600_000),
  BACKCHANNEL_KEY_RELOAD_MS: int(100, 3_600_000).default(5_000),
});

/** Validated relay configuration. */
export type Config = z.infer<typeof ConfigSchema>;

/** Variables that hold secrets and may instead be read from a file named by `<NAME>_FILE`. */
const SECRET_VARIABLES = ['DATABASE_URL', 'BACKCHANNEL_METRICS_TOKEN'] as const;

/** A configuration value that failed validation; `message` is one line naming the variable. */
export class ConfigError extends OperatorError {
  override readonly name = 'ConfigError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('config_invalid', message, options);
  }
}

/**
 * `NAME_FILE=/run/secrets/x` for each secret variable: the file's content (one trailing newline
 * dropped) becomes NAME, so secrets need not sit in the environment. Setting both is an error.
 */
function withFileSecrets(env: Record<string, string | undefined>): Record<string, string | undefined> {
  const out = { ...env };
  for (const name of SECRET_VARIABLES) {
    const file = env[`${name}_FILE`];
    if (file === undefined || file === '') continue;
    if (env[name] !== undefined && env[name] !== '') throw new ConfigError(`invalid ${name}_FILE: ${name} is set too; set one of them`);
    try {
      out[name] = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      throw new ConfigError(`invalid ${name}_FILE: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { cause: err });
    }
  }
  return out;
}

/** Parses the environment; throws {@link ConfigError} naming the first bad variable. */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const resolved = withFileSecrets(env);
  const picked: Record<string, string> = {};
  for (const key of Object.keys(ConfigSchema.shape)) {
    const value = resolved[key];
    // Unset and empty mean the default; a value of blanks is a mistake, and is refused.
    if (value !== undefined && value !== '') picked[key] = value;
  }
  const result = ConfigSchema.safeParse(picked);
  if (!result.success) {
    const issue = result.error.issues[0];
    const name = String(issue?.path[0] ?? 'configuration');
    // Never echo the value: DATABASE_URL carries a password.
    throw new ConfigError(`invalid ${name}: ${issue?.message ?? 'invalid value'}`);
  }
  return result.data;
}

/** `BACKCHANNEL_*` names in `env` the relay does not know (a misspelling is otherwise silent). */
export function unknownVariables(env: Record<string, string | undefined>): string[] {
  const known = new Set<string>([...Object.keys(ConfigSchema.shape), ...SECRET_VARIABLES.map((n) => `${n}_FILE`)]);
  return Object.keys(env).filter((k) => k.startsWith('BACKCHANNEL_') && !known.has(k)).sort();
}
