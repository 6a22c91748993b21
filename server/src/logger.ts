import { pino, type Logger } from 'pino';

/**
 * The relay's JSON logger. Only metadata is ever logged (ids, codes, counts, timings); the
 * redaction list is a second line of defence for fields that must never reach a log.
 */
export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: { service: 'backchannel-relay' },
      redact: {
        // Each name at the top level and one level down; `err.detail` because PostgreSQL puts a
        // failing row's values there. Checked by test/operator/log-secrets.test.ts.
        paths: ['body', 'header', 'headers', 'secret', 'secretKey', 'proof', 'nonce', 'password', 'url', 'databaseUrl', 'err.detail'].flatMap((p) =>
          p.includes('.') ? [p] : [p, `*.${p}`],
        ),
        censor: '[redacted]',
      },
    },
    destination ?? process.stdout,
  );
}

export type { Logger };
