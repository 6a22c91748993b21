import { BackchannelError } from '@backchannel/client-sdk/protocol';
import type { Gauge } from 'prom-client';
import type { Logger } from '../logger.js';
import type { Db } from './connect.js';

/** Settings without which an acknowledged message can be lost (or the database corrupted) in a crash. */
const DURABILITY_SETTINGS = ['fsync', 'synchronous_commit', 'full_page_writes'] as const;

/** The first durability setting that is off on the relay's session, if any. */
export async function nonDurableSetting(db: Db): Promise<string | undefined> {
  const { rows } = await db.pool.query<{ fsync: string; synchronous_commit: string; full_page_writes: string }>(
    `select current_setting('fsync') as fsync, current_setting('synchronous_commit') as synchronous_commit, current_setting('full_page_writes') as full_page_writes`,
  );
  const row = rows[0];
  return DURABILITY_SETTINGS.find((s) => row?.[s] === 'off');
}

/**
 * Refuses a database that could lose acknowledged messages: the relay acks only after commit, and
 * that promise means nothing with `fsync` or `synchronous_commit` off.
 */
export async function assertDurable(db: Db): Promise<void> {
  const off = await nonDurableSetting(db);
  if (off !== undefined) {
    throw new BackchannelError('unavailable', `refusing to start: PostgreSQL has ${off}=off, acknowledged messages could be lost`);
  }
}

/**
 * Re-checks durability while the relay runs: `ALTER SYSTEM SET fsync = off` and a reload take
 * effect without a restart. `/readyz` asks {@link check} on each probe; a timer asks every
 * `intervalMs` so the metric and the log follow even without probes.
 */
export class DurabilityMonitor {
  readonly #db: Db;
  readonly #logger: Logger;
  readonly #gauge: Gauge;
  readonly #timer: NodeJS.Timeout;
  #durable = true;

  constructor(db: Db, logger: Logger, gauge: Gauge, intervalMs: number) {
    this.#db = db;
    this.#logger = logger;
    this.#gauge = gauge;
    this.#gauge.set(1);
    this.#timer = setInterval(() => void this.check().catch(() => undefined), intervalMs);
    this.#timer.unref();
  }

  /** True when the database is durable now; rejects when it cannot be asked. */
  async check(): Promise<boolean> {
    const off = await nonDurableSetting(this.#db);
    const durable = off === undefined;
    if (durable !== this.#durable) {
      this.#durable = durable;
      this.#gauge.set(durable ? 1 : 0);
      if (durable) this.#logger.info({ event: 'database_durable' }, 'PostgreSQL is durable again');
      else this.#logger.error({ event: 'database_not_durable', setting: off }, `PostgreSQL now has ${off}=off: acknowledged messages could be lost; /readyz answers 503`);
    }
    return durable;
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
