import { isIPv6 } from 'node:net';

/** Failed attempts a peer may make at once, and how many a second it earns back. */
export const AUTH_FAILURE_BURST = 20;
export const AUTH_FAILURE_RATE_PER_SEC = 2;
/** Peers remembered before the ones that are back to a full allowance are forgotten. */
const MAX_PEERS = 100_000;

/**
 * A per-peer token bucket over failed authentication attempts, asked before any database or
 * X25519 work is done for an attempt. Only failures that cost the relay something (a used
 * nonce, a wrong proof) are charged, so clients that log in correctly are never limited however
 * many of them share an address; a failure may drive the balance below zero, so a peer that
 * floods in parallel (all its attempts checked before the first fails) waits the longer for it.
 *
 * A peer is its IP address, or for IPv6 its /64, since one host commonly holds a whole /64.
 * Behind a reverse proxy every client is the proxy: limit failed logins at the proxy there.
 */
export class AuthLimiter {
  readonly #peers = new Map<string, { tokens: number; at: number }>();
  readonly #now: () => number;

  constructor(now: () => number = () => performance.now()) {
    this.#now = now;
  }

  /** True when `address` may attempt to authenticate now. */
  allows(address: string): boolean {
    return this.#balance(peerOf(address)) >= 1;
  }

  /** Charges one failed attempt to `address`. */
  failed(address: string): void {
    const peer = peerOf(address);
    const tokens = this.#balance(peer) - 1;
    if (!this.#peers.has(peer) && this.#peers.size >= MAX_PEERS) this.#forgetRecovered();
    this.#peers.set(peer, { tokens, at: this.#now() });
  }

  #balance(peer: string): number {
    const entry = this.#peers.get(peer);
    if (entry === undefined) return AUTH_FAILURE_BURST;
    return Math.min(AUTH_FAILURE_BURST, entry.tokens + ((this.#now() - entry.at) / 1000) * AUTH_FAILURE_RATE_PER_SEC);
  }

  /** Drops peers whose allowance is full again (they are indistinguishable from new ones). */
  #forgetRecovered(): void {
    for (const peer of this.#peers.keys()) if (this.#balance(peer) >= AUTH_FAILURE_BURST) this.#peers.delete(peer);
  }
}

/** The peer an address belongs to: IPv4 as is (also when IPv4-mapped), IPv6 by its /64. */
function peerOf(address: string): string {
  if (!isIPv6(address)) return address;
  if (address.startsWith('::ffff:') && address.includes('.')) return address.slice(7);
  const [head = '', tail] = address.split('::') as [string, string | undefined];
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':')}::/64`;
}
