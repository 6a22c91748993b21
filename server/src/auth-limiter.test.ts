import { describe, expect, it } from 'vitest';
import { AUTH_FAILURE_BURST, AUTH_FAILURE_RATE_PER_SEC, AuthLimiter } from './auth-limiter.js';

function exhaust(limiter: AuthLimiter, address: string): void {
  for (let i = 0; i < AUTH_FAILURE_BURST; i++) limiter.failed(address);
}

describe('AuthLimiter', () => {
  it('refuses a peer after its burst of failures and lets it back as the allowance refills', () => {
    let now = 0;
    const limiter = new AuthLimiter(() => now);
    exhaust(limiter, '203.0.113.7');
    expect(limiter.allows('203.0.113.7')).toBe(false);
    expect(limiter.allows('203.0.113.8')).toBe(true);
    now += 1000 / AUTH_FAILURE_RATE_PER_SEC;
    expect(limiter.allows('203.0.113.7')).toBe(true);
  });

  it('charges failures made in parallel as debt: the peer waits for all of them', () => {
    let now = 0;
    const limiter = new AuthLimiter(() => now);
    for (let i = 0; i < 3 * AUTH_FAILURE_BURST; i++) limiter.failed('203.0.113.9');
    now += ((2 * AUTH_FAILURE_BURST) / AUTH_FAILURE_RATE_PER_SEC) * 1000 - 1;
    expect(limiter.allows('203.0.113.9')).toBe(false);
    now += 1000 / AUTH_FAILURE_RATE_PER_SEC + 1;
    expect(limiter.allows('203.0.113.9')).toBe(true);
  });

  it('counts an IPv6 /64 as one peer, and an IPv4-mapped address as its IPv4 address', () => {
    const limiter = new AuthLimiter(() => 0);
    exhaust(limiter, '2001:db8:0:7::1');
    expect(limiter.allows('2001:db8:0:7:ffff::2')).toBe(false);
    expect(limiter.allows('2001:0db8:0000:0007:0:0:0:3')).toBe(false);
    expect(limiter.allows('2001:db8:0:8::1')).toBe(true);
    exhaust(limiter, '::ffff:198.51.100.4');
    expect(limiter.allows('198.51.100.4')).toBe(false);
  });
});
