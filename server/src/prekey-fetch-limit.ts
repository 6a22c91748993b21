import { LIMITS } from '@backchannel/client-sdk/protocol';

/** Fetchers remembered before the ones that are back to a full allowance are forgotten. */
const MAX_FETCHERS = 100_000;

/**
 * A token bucket per (channel, fetching member) over `prekeys.fetch`, so one member cannot drain
 * another's one-time prekeys. A member that starts a session with every other member at once
 * (its first send) needs one fetch per member, so the bucket holds as many tokens as the channel
 * has active members, and earns back `LIMITS.prekeyFetchesPerMinute`. Kept per relay node: with
 * several nodes, a member that reconnects elsewhere starts on that node's allowance.
 */
export class PrekeyFetchLimiter {
  readonly #buckets = new Map<string, { tokens: number; at: number; burst: number }>();
  readonly #now: () => number;

  constructor(now: () => number = () => performance.now()) {
    this.#now = now;
  }

  /** Takes one fetch for `fetcher` in `channel` (whose bucket holds `burst`); false when none is left. */
  take(channel: string, fetcher: string, burst: number): boolean {
    const key = `${channel} ${fetcher}`;
    const tokens = this.#balance(key, burst);
    if (tokens < 1) return false;
    if (!this.#buckets.has(key) && this.#buckets.size >= MAX_FETCHERS) this.#forgetRecovered();
    this.#buckets.set(key, { tokens: tokens - 1, at: this.#now(), burst });
    return true;
  }

  #balance(key: string, burst: number): number {
    const entry = this.#buckets.get(key);
    if (entry === undefined) return burst;
    return Math.min(burst, entry.tokens + ((this.#now() - entry.at) / 60_000) * LIMITS.prekeyFetchesPerMinute);
  }

  /** Drops fetchers whose allowance is full again (they are indistinguishable from new ones). */
  #forgetRecovered(): void {
    for (const [key, entry] of this.#buckets) if (this.#balance(key, entry.burst) >= entry.burst) this.#buckets.delete(key);
  }
}
