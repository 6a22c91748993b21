import { z } from 'zod';
import { LIMITS } from '@backchannel/client-sdk/protocol';

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

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
    .transform((v) => (v === undefined || v.trim() === '' ? undefined : v.split(',').map((o) => o.trim()))),
  BACKCHANNEL_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  BACKCHANNEL_SHUTDOWN_TIMEOUT_MS: int(100, 300_000).default(10_000),
  BACKCHANNEL_RETENTION_SWEEP_MS: int(1_000, 86_400_000).default(60_000),
});

/** Validated relay configuration. */
export type Config = z.infer<typeof ConfigSchema>;

/** A configuration value that failed validation; `message` is one line naming the variable. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Parses the environment; throws {@link ConfigError} naming the first bad variable. */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const picked: Record<string, string> = {};
  for (const key of Object.keys(ConfigSchema.shape)) {
    const value = env[key];
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
