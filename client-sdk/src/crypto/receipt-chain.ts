/**
 * The relay's receipt chain: a hash chain over every message it accepted in a channel, in
 * sequence order. Recipients remember the chain value per delivered `seq`; senders quote the
 * last one they saw inside their encrypted header, so a relay that shows two members different
 * histories (a fork) is caught as soon as one quotes the other's view.
 */
import { sodium } from '../sodium.js';
import { u64be } from './bytes.js';

/** chain_0: 32 zero bytes. */
export const RECEIPT_CHAIN_GENESIS: Uint8Array = new Uint8Array(32);

/**
 * chain_n = BLAKE2b-256(chain_{n-1} || seq (8 B BE) || commitment || receivedAt (8 B BE, ms)).
 * Call only after `sodiumReady()` has resolved. The commitment has a fixed 32-byte length, so the
 * concatenation is unambiguous.
 */
export function nextReceiptChain(
  prev: Uint8Array,
  seq: number,
  commitment: Uint8Array,
  receivedAt: number,
): Uint8Array {
  if (prev.length !== 32) throw new RangeError('receipt chain value must be 32 bytes');
  const state = sodium.crypto_generichash_init(null, 32);
  sodium.crypto_generichash_update(state, prev);
  sodium.crypto_generichash_update(state, u64be(seq));
  sodium.crypto_generichash_update(state, commitment);
  sodium.crypto_generichash_update(state, u64be(receivedAt));
  return sodium.crypto_generichash_final(state, 32);
}
