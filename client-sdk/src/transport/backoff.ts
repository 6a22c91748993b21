/**
 * Full-jitter exponential backoff (the AWS architecture blog's "full jitter", as in
 * centrifuge-js): a uniform delay in [0, min(max, base·2^attempt)], so a relay restart is not
 * met by every client at the same instant.
 */
export function backoffDelay(attempt: number, random: () => number, baseMs = 250, maxMs = 10_000): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 20));
  return Math.floor(random() * ceiling);
}
