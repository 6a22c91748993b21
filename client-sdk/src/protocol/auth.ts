import { z } from 'zod';
import { Timestamp, bytesField, fixedBytesField } from './fields.js';

/**
 * Relay authentication is a Diffie-Hellman challenge, never a signature: the client fetches a
 * challenge over HTTP, then opens the WebSocket with a proof only it and the relay can compute
 * (a MAC keyed by X25519(member key, relay key)). The relay thus holds nothing it could show a
 * third party as evidence of who connected.
 *
 * The credentials ride in the WebSocket handshake's `Sec-WebSocket-Protocol` header, as a
 * second offered subprotocol beside {@link SUBPROTOCOL}, never in the URL, where proxies and
 * servers log them. (Browsers cannot set other headers on a WebSocket; every browser can offer
 * subprotocols.) The relay selects `backchannel.v2` and never echoes the credentials.
 */
export const AUTH_PATHS = {
  challenge: '/v1/challenge',
  socket: '/v1/ws',
} as const;

/** Prefix of the credentials subprotocol: `backchannel.auth.<member key>.<nonce>.<proof>` (base64url). */
export const AUTH_SUBPROTOCOL_PREFIX = 'backchannel.auth.';

/** Upgrade credentials, base64url. */
export interface AuthCredentials {
  key: string;
  nonce: string;
  proof: string;
}

/** The credentials subprotocol to offer (base64url has no '.', so the parts stay apart). */
export function authSubprotocol(c: AuthCredentials): string {
  return `${AUTH_SUBPROTOCOL_PREFIX}${c.key}.${c.nonce}.${c.proof}`;
}

/** The credentials among the offered subprotocols, or undefined when none (or several) are well formed. */
export function readAuthSubprotocol(offered: Iterable<string>): AuthCredentials | undefined {
  const found = [...offered].filter((p) => p.startsWith(AUTH_SUBPROTOCOL_PREFIX));
  if (found.length !== 1) return undefined;
  const parts = found[0]!.slice(AUTH_SUBPROTOCOL_PREFIX.length).split('.');
  if (parts.length !== 3) return undefined;
  const [key, nonce, proof] = parts as [string, string, string];
  return { key, nonce, proof };
}

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
