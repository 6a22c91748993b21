import { sql } from 'kysely';
import { BackchannelError } from '@backchannel/client-sdk/protocol';
import type { Db } from './connect.js';

/**
 * Refuses a database that could lose acknowledged messages: the relay acks only after commit, and
 * that promise means nothing with `fsync` or `synchronous_commit` off.
 */
export async function assertDurable(db: Db): Promise<void> {
  for (const setting of ['fsync', 'synchronous_commit'] as const) {
    const { rows } = await sql<{ value: string }>`select current_setting(${setting}) as value`.execute(db.kysely);
    const value = rows[0]?.value;
    if (value === 'off') {
      throw new BackchannelError('unavailable', `refusing to start: PostgreSQL has ${setting}=off, acknowledged messages could be lost`);
    }
  }
}
