import { describe, expect, it } from 'vitest';
import { LIMITS } from '@backchannel/client-sdk/protocol';
import { PrekeyFetchLimiter } from './prekey-fetch-limit.js';

describe('PrekeyFetchLimiter', () => {
  it('allows a burst of the given size per (channel, fetcher), then earns fetches back by the minute', () => {
    let now = 0;
    const limiter = new PrekeyFetchLimiter(() => now);
    const takes = (n: number, channel = 'c', fetcher = 'm'): boolean[] => Array.from({ length: n }, () => limiter.take(channel, fetcher, 5));
    expect(takes(6)).toEqual([true, true, true, true, true, false]);
    expect(limiter.take('c', 'other', 5)).toBe(true);
    expect(limiter.take('other channel', 'm', 5)).toBe(true);
    now += 60_000 / LIMITS.prekeyFetchesPerMinute;
    expect(takes(2)).toEqual([true, false]);
  });
});
