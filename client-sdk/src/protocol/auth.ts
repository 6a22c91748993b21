import { z } from 'zod';
import { Timestamp, bytesField, fixedBytesField } from './fields.js';

/**
 * Relay authentication is a Diffie-Hellman challenge, never a signature: the client fetches a
 * challenge over HTTP, then opens the WebSocket with a proof only it and the relay can compute
 * (a MAC keyed by X25519(member key, relay key)). The relay thus holds nothing it could show a
 * third party as evidence of who connected.
 */
export const AUTH_PATHS = {
  challenge: '/v1/challenge',
  socket: '/v1/ws',
} as const;

/** Query parameters of the WebSocket upgrade. */
export const AUTH_QUERY = {
  key: 'key',
  nonce: 'nonce',
  proof: 'proof',
} as const;

/** Answer of `GET /v1/challenge`. */
export const Challenge = z.strictObject({
  /** The relay's X25519 authentication key. */
  relayKey: fixedBytesField(32),
  /** Single-use, self-authenticating nonce. */
  nonce: bytesField(64),
  expiresAt: Timestamp,
});

/** A challenge as served by the relay. */
export type Challenge = z.infer<typeof Challenge>;

/** Domain-separation label of the authentication proof. */
export const AUTH_PROOF_LABEL = 'backchannel/auth/v1';
