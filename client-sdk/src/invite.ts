import { utf8 } from './protocol/index.js';
import { sodium } from './sodium.js';

/** Length of an invitation secret in bytes. */
export const INVITE_SECRET_BYTES = 32;

/** A fresh invitation secret (call `sodiumReady()` first). Delivered out of band, never to the relay. */
export function newInviteSecret(): Uint8Array {
  return sodium.randombytes_buf(INVITE_SECRET_BYTES);
}

/**
 * What the host registers with the relay: a keyed hash of the secret, so a copy of the relay's
 * database cannot redeem an invitation.
 */
export function inviteSecretHash(secret: Uint8Array): Uint8Array {
  return sodium.crypto_generichash(32, secret, utf8('backchannel/invite/v1'));
}
