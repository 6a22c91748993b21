/**
 * Per-channel member keys. A member is pseudonymous per channel: a fresh Ed25519 key (signs only
 * prekeys, admission approvals and disclosure consents) and a fresh X25519 key (relay
 * authentication and X3DH identity). The X25519 public key is the member's address.
 */
import { z } from 'zod';
import { MemberKey, SignKey, fixedBytesField } from '../protocol/index.js';
import { sodium, sodiumReady } from '../sodium.js';
import { b64, bytesOf } from './bytes.js';

/** Persisted member keys: base64url strings only, so any key store can hold them as JSON. */
export const MemberKeysSchema = z.strictObject({
  /** Ed25519 public key (the roster's `signKey`). */
  signPublic: SignKey,
  /** Ed25519 secret key (64 bytes, libsodium layout). */
  signSecret: fixedBytesField(64),
  /** X25519 public key: the member's address and relay login (`MemberKey`). */
  dhPublic: MemberKey,
  /** X25519 secret key. */
  dhSecret: fixedBytesField(32),
});

/** A member's per-channel keys, JSON-serialisable. Secret: keep it in a key store only. */
export type MemberKeys = z.infer<typeof MemberKeysSchema>;

/** Generates fresh per-channel member keys. */
export async function generateMemberKeys(): Promise<MemberKeys> {
  await sodiumReady();
  const sign = sodium.crypto_sign_keypair();
  const dh = sodium.crypto_box_keypair();
  return {
    signPublic: b64(sign.publicKey),
    signSecret: b64(sign.privateKey),
    dhPublic: b64(dh.publicKey),
    dhSecret: b64(dh.privateKey),
  };
}

/** The member's address in its channel: its X25519 public key, base64url. */
export function memberAddress(keys: MemberKeys): string {
  return keys.dhPublic;
}

/** Serialises member keys to JSON text (for stores that hold strings). */
export function serializeMemberKeys(keys: MemberKeys): string {
  return JSON.stringify(keys);
}

/**
 * Parses and checks stored member keys, including that each public key belongs to its secret,
 * so a corrupted store fails here rather than producing unverifiable signatures later.
 */
export async function parseMemberKeys(value: unknown): Promise<MemberKeys> {
  await sodiumReady();
  const keys = MemberKeysSchema.parse(typeof value === 'string' ? JSON.parse(value) : value);
  const dhPub = sodium.crypto_scalarmult_base(bytesOf(keys.dhSecret, 32));
  const signPub = bytesOf(keys.signSecret, 64).subarray(32);
  if (b64(dhPub) !== keys.dhPublic || b64(signPub) !== keys.signPublic) {
    throw new RangeError('member keys are inconsistent');
  }
  return keys;
}
