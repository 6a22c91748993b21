import { utf8 } from './protocol/index.js';
import { sodium } from './sodium.js';

/** Length of an invitation secret in bytes. */
export const INVITE_SECRET_BYTES = 32;

/** A fresh invitation secret (call `sodiumReady()` first). Delivered out of band, never to the relay. */
export function newInviteSecret(): Uint8Array {
  return sodium.randombytes_buf(INVITE_SECRET_BYTES);
}

/**
 * The invitation's key pair, derived from its secret. The host registers the public half (signed
 * by the host); the invitee signs its keys with the secret half on redemption. The relay holds
 * only the public half, so it can check a redemption but never make one.
 */
export function invitationKeys(secret: Uint8Array): { publicKey: Uint8Array; secretKey: Uint8Array } {
  const seed = sodium.crypto_generichash(32, secret, utf8('backchannel/invite-key/v1'));
  const pair = sodium.crypto_sign_seed_keypair(seed);
  return { publicKey: pair.publicKey, secretKey: pair.privateKey };
}
