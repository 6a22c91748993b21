/**
 * Message franking: each message carries, outside its ciphertext, c = BLAKE2b-256 keyed by a
 * fresh 32-byte k_f over "backchannel/frank/v1" ‖ plaintext. The relay timestamps c without
 * learning the text or binding the sender; revealing (plaintext, k_f) later lets anyone check
 * that this exact text was the message the relay received. k_f never leaves the ciphertext
 * unless a disclosure opens it.
 */
import { sodium } from '../sodium.js';
import { bytesEqual, concat, label } from './bytes.js';

const FRANK_LABEL = label('backchannel/frank/v1');

/** Length of a franking key. */
export const FRANKING_KEY_BYTES = 32;

/** c = BLAKE2b-256(key = k_f, "backchannel/frank/v1" ‖ plaintext). Call after `sodiumReady()`. */
export function frankingCommitment(frankingKey: Uint8Array, plaintext: Uint8Array): Uint8Array {
  if (frankingKey.length !== FRANKING_KEY_BYTES) throw new RangeError('franking key must be 32 bytes');
  return sodium.crypto_generichash(32, concat(FRANK_LABEL, plaintext), frankingKey);
}

/** True when (k_f, plaintext) opens commitment c. Call after `sodiumReady()`. */
export function verifyOpening(commitment: Uint8Array, frankingKey: Uint8Array, plaintext: Uint8Array): boolean {
  if (commitment.length !== 32 || frankingKey.length !== FRANKING_KEY_BYTES) return false;
  return bytesEqual(frankingCommitment(frankingKey, plaintext), commitment);
}
