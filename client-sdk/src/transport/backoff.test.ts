import { describe, expect, it } from 'vitest';
import { backoffDelay, retryDelay } from './backoff.js';

describe('retryDelay', () => {
  it('waits at least the relay hint, then full jitter over a window that doubles', () => {
    expect(retryDelay(0, () => 0, 50)).toBe(50);
    expect(retryDelay(0, () => 0.999_999, 50)).toBe(50 + 249);
    expect(retryDelay(3, () => 0.5, 0)).toBe(1_000);
    expect(retryDelay(0, () => 0.5)).toBe(125);
  });

  it('caps the window at 5 s however many attempts failed', () => {
    for (const attempt of [5, 10, 100, 10_000]) expect(retryDelay(attempt, () => 0.999_999, 20)).toBeLessThan(20 + 5_000);
    expect(retryDelay(100, () => 0.5, 0)).toBe(2_500);
  });

  it('spreads clients refused together over the whole window (full jitter)', () => {
    const draws = Array.from({ length: 1_000 }, (_, i) => retryDelay(4, () => i / 1_000, 0));
    expect(Math.min(...draws)).toBe(0);
    expect(Math.max(...draws)).toBe(3_996);
    expect(backoffDelay(4, () => 0.25)).toBe(1_000);
  });
});
