import { AUTH_PROOF_LABEL, utf8 } from './protocol/index.js';
import { sodium } from './sodium.js';

/**
 * The relay-authentication proof: BLAKE2b-256 keyed by a key derived from X25519(ours, theirs),
 * over the label, the nonce, the member key and the relay key. Computed identically by the
 * client (member secret, relay public) and the relay (relay secret, member public). Call
 * `sodiumReady()` first.
 */
export function authProof(
  ourSecret: Uint8Array,
  theirPublic: Uint8Array,
  memberKey: Uint8Array,
  relayKey: Uint8Array,
  nonce: Uint8Array,
): Uint8Array {
  const shared = sodium.crypto_scalarmult(ourSecret, theirPublic);
  const key = sodium.crypto_generichash(32, shared, utf8(`${AUTH_PROOF_LABEL}/key`));
  shared.fill(0);
  const label = utf8(AUTH_PROOF_LABEL);
  const msg = new Uint8Array(label.length + nonce.length + 64);
  msg.set(label, 0);
  msg.set(nonce, label.length);
  msg.set(memberKey, label.length + nonce.length);
  msg.set(relayKey, label.length + nonce.length + 32);
  const proof = sodium.crypto_generichash(32, msg, key);
  key.fill(0);
  return proof;
}
