import type { Committed } from '../store/message-log.js';
import { DeliverFrame } from './deliver-frame.js';
import type { HeadSource, Subscription } from './subscription.js';

/**
 * In-process fan-out: subscriptions by channel, and the newest sequence this node knows of each
 * channel (from its own commits and from other nodes' notifications).
 */
export class Hub implements HeadSource {
  readonly #subs = new Map<string, Set<Subscription>>();
  readonly #heads = new Map<string, number>();

  /** Adds a subscription. */
  add(sub: Subscription): void {
    let set = this.#subs.get(sub.channelText);
    if (set === undefined) this.#subs.set(sub.channelText, (set = new Set()));
    set.add(sub);
  }

  /** Removes a subscription. */
  remove(sub: Subscription): void {
    const set = this.#subs.get(sub.channelText);
    if (set === undefined) return;
    set.delete(sub);
    if (set.size === 0) this.#subs.delete(sub.channelText);
  }

  /** The newest sequence this node knows for a channel. */
  head(channelText: string): number {
    return this.#heads.get(channelText) ?? 0;
  }

  /** A commit on this node: update the head first, then push to subscribers in order. */
  committed(c: Committed): void {
    if (c.seq > this.head(c.channelText)) this.#heads.set(c.channelText, c.seq);
    const set = this.#subs.get(c.channelText);
    if (set === undefined) return;
    const frame = new DeliverFrame(c);
    for (const sub of set) sub.committed(c, frame);
  }

  /** A notification that a channel reached `seq` (possibly on another node). */
  advanced(channelText: string, seq: number): void {
    if (seq > this.head(channelText)) this.#heads.set(channelText, seq);
    const set = this.#subs.get(channelText);
    if (set !== undefined) for (const sub of set) sub.advanced(seq);
  }

  /** Makes every subscription re-read the database (after missed notifications). */
  resync(): void {
    for (const set of this.#subs.values()) for (const sub of set) sub.advanced(Number.MAX_SAFE_INTEGER);
  }

  /** Drops a channel entirely (dissolved). */
  forget(channelText: string): void {
    const set = this.#subs.get(channelText);
    if (set !== undefined) for (const sub of set) sub.close();
    this.#subs.delete(channelText);
    this.#heads.delete(channelText);
  }

  /** Number of live subscriptions (metrics). */
  get size(): number {
    let n = 0;
    for (const set of this.#subs.values()) n += set.size;
    return n;
  }
}
