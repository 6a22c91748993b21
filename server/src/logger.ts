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
        paths: ['body', 'header', 'headers', 'secret', 'proof', 'nonce', 'password', 'url', 'databaseUrl', '*.body', '*.secret', '*.proof'],
        censor: '[redacted]',
      },
    },
    destination ?? process.stdout,
  );
}

export type { Logger };
