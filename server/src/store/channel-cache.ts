import type { Db } from '../db/connect.js';
import { readChannel, type ChannelState } from './channels.js';
import { fromBase64Url } from '@backchannel/client-sdk/protocol';

/**
 * Channel rosters kept in memory for the hot path (every send checks sender and recipients).
 * Invalidated on every roster change, locally and, through NOTIFY, on other relay nodes.
 */
export class ChannelCache {
  readonly #db: Db;
  readonly #entries = new Map<string, Promise<ChannelState | undefined>>();

  constructor(db: Db) {
    this.#db = db;
  }

  /** The channel's current state, from memory when possible. */
  get(idText: string): Promise<ChannelState | undefined> {
    let entry = this.#entries.get(idText);
    if (entry === undefined) {
      const id = fromBase64Url(idText);
      entry = id === undefined ? Promise.resolve(undefined) : readChannel(this.#db.kysely, id);
      this.#entries.set(idText, entry);
      // A failed read (database down) must not be cached.
      entry.catch(() => this.#entries.delete(idText));
    }
    return entry;
  }

  /** Forgets a channel so the next read comes from the database. */
  invalidate(idText: string): void {
    this.#entries.delete(idText);
  }

  /** Forgets everything (after a lost database notification connection). */
  clear(): void {
    this.#entries.clear();
  }
}
