/**
 * Safety numbers: a short code two members compare out of band (read aloud, or side by side)
 * to confirm the relay gave each the other's real keys. Each side's half is 30 digits from
 * iterated BLAKE2b-512 over its sign and DH keys (iterations make a targeted near-collision
 * expensive); the halves are sorted, so both members see the same 60 digits.
 */
import { sodium, sodiumReady } from '../sodium.js';
import { bytesOf, concat, label, type BytesLike } from './bytes.js';

/** One member's public keys as the roster lists them. */
export interface MemberPublicKeys {
  /** X25519 member key. */
  key: BytesLike;
  /** Ed25519 sign key. */
  signKey: BytesLike;
}

const SAFETY_LABEL = label('backchannel/safety-number/v1');
const ITERATIONS = 5200;

function half(member: MemberPublicKeys): string {
  const keys = concat(bytesOf(member.signKey, 32, 'sign key'), bytesOf(member.key, 32, 'member key'));
  let h = sodium.crypto_generichash(64, concat(SAFETY_LABEL, keys), null);
  for (let i = 0; i < ITERATIONS; i++) h = sodium.crypto_generichash(64, concat(h, keys), null);
  let out = '';
  for (let i = 0; i < 6; i++) {
    // 5 bytes per chunk (40 bits) mod 100000: bias below 1e-7, irrelevant for comparison.
    let v = 0;
    for (let j = 0; j < 5; j++) v = v * 256 + h[i * 5 + j]!;
    out += String(v % 100_000).padStart(5, '0');
  }
  return out;
}

/**
 * The 60-digit safety number of two members, in twelve groups of five separated by spaces.
 * Symmetric: `safetyNumber(a, b) === safetyNumber(b, a)`.
 */
export async function safetyNumber(a: MemberPublicKeys, b: MemberPublicKeys): Promise<string> {
  await sodiumReady();
  const [x, y] = [half(a), half(b)].sort();
  return (x! + y!).match(/.{5}/g)!.join(' ');
}

/**
 * One member's fingerprint: 30 digits in six groups of five, from its sign and DH keys. A party
 * compares a pending member's fingerprint with the one the invitee reads out before approving.
 */
export async function memberFingerprint(member: MemberPublicKeys): Promise<string> {
  await sodiumReady();
  return half(member).match(/.{5}/g)!.join(' ');
}
