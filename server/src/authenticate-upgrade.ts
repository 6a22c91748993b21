import type { IncomingMessage } from 'node:http';
import { readAuthSubprotocol } from '@backchannel/client-sdk/protocol';
import type { AuthLimiter } from './auth-limiter.js';
import type { AuthFailure, Authenticator } from './auth.js';

/** What {@link authenticateUpgrade} needs. */
export interface UpgradeAuthDeps {
  auth: Authenticator;
  limiter: AuthLimiter;
  /** Uses a nonce up on every node: true the first time (see `store/auth-nonces.ts`). */
  useNonce(nonce: Uint8Array, expiresAt: number): Promise<boolean>;
}

/**
 * Authenticates a WebSocket upgrade before any socket exists, cheapest refusal first: the
 * peer's allowance of failed attempts; the credentials' form, the nonce's MAC and expiry; then
 * the nonce is used up in the database (so a failed proof uses it up too, and a nonce used on
 * one node is refused on every other); only then the X25519 proof. Failures past the cheap
 * checks are charged to the peer. A database error rejects (the caller answers 503).
 */
export async function authenticateUpgrade(req: IncomingMessage, deps: UpgradeAuthDeps): Promise<{ ok: true; memberKey: Uint8Array } | { ok: false; reason: AuthFailure }> {
  const peer = req.socket.remoteAddress ?? '';
  if (!deps.limiter.allows(peer)) return { ok: false, reason: 'rate_limited' };
  const offered = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
  const checked = deps.auth.precheck(readAuthSubprotocol(offered));
  if (!checked.ok) return checked;
  if (!(await deps.useNonce(checked.nonce, checked.expiresAt))) {
    deps.limiter.failed(peer);
    return { ok: false, reason: 'replayed' };
  }
  if (!deps.auth.proofValid(checked)) {
    deps.limiter.failed(peer);
    return { ok: false, reason: 'bad_proof' };
  }
  return { ok: true, memberKey: checked.memberKey };
}
