/**
 * Full-jitter exponential backoff (the AWS architecture blog's "full jitter", as in
 * centrifuge-js): a uniform delay in [0, min(max, base·2^attempt)], so a relay restart is not
 * met by every client at the same instant.
 */
export function backoffDelay(attempt: number, random: () => number, baseMs = 250, maxMs = 10_000): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 20));
  return Math.floor(random() * ceiling);
}

/**
 * The wait before re-sending a request the relay refused as `overloaded` or `unavailable`: at
 * least the relay's `retryAfterMs` hint, then full jitter over [0, min(5 s, 250 ms·2^attempt)].
 * The jitter spreads the clients a relay refused together, and the doubling cap keeps a relay
 * that stays overloaded from being met by a retry storm: each waiting send comes back at most
 * about once per 2.5 s on average once its cap is reached, whatever the number of attempts.
 */
export function retryDelay(attempt: number, random: () => number, hintMs = 0): number {
  return hintMs + backoffDelay(attempt, random, 250, 5_000);
}
