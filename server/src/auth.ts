import { authProof, sodium } from '@backchannel/client-sdk';
import { fromBase64Url, toBase64Url, utf8, type AuthCredentials, type Challenge } from '@backchannel/client-sdk/protocol';

const NONCE_RANDOM = 16;
const NONCE_TAG = 24;
const NONCE_BYTES = NONCE_RANDOM + 8 + NONCE_TAG;
const CHALLENGE_TTL_MS = 60_000;

/**
 * Why an authentication attempt was refused (never sent in detail to the client).
 * `unknown_key`: the nonce was issued under an auth key this node does not (yet) hold.
 */
export type AuthFailure = 'malformed' | 'unknown_key' | 'expired' | 'replayed' | 'bad_proof' | 'rate_limited';

/** An auth key pair the relay accepts proofs against. */
export interface AuthKeyPair {
  readonly publicKey: Uint8Array;
  readonly secretKey: Uint8Array;
}

/** Credentials that passed the cheap checks: well formed, a nonce this relay issued under `key`, not expired. */
export interface Prechecked {
  memberKey: Uint8Array;
  nonce: Uint8Array;
  proof: Uint8Array;
  expiresAt: number;
  key: AuthKeyPair;
}

/**
 * Issues and checks Diffie-Hellman challenges. Nonces are self-authenticating (a MAC under a key
 * derived from the relay's auth secret), so any node sharing the key can check them without a
 * lookup; that each is used once, on any node, is the database's part (`store/auth-nonces.ts`).
 * During an auth-key rotation `keys()` holds the current key first (challenges are issued under
 * it) and the keys retired within the grace period after it, so a challenge fetched from one node
 * verifies on every other.
 */
export class Authenticator {
  readonly #keys: () => readonly AuthKeyPair[];
  readonly #now: () => number;

  constructor(keys: () => readonly AuthKeyPair[], now: () => number = Date.now) {
    this.#keys = keys;
    this.#now = now;
  }

  /** A fresh challenge for `GET /v1/challenge`. */
  challenge(): Challenge {
    const key = this.#keys()[0]!;
    const expiresAt = this.#now() + CHALLENGE_TTL_MS;
    const nonce = new Uint8Array(NONCE_BYTES);
    nonce.set(sodium.randombytes_buf(NONCE_RANDOM), 0);
    new DataView(nonce.buffer).setBigUint64(NONCE_RANDOM, BigInt(expiresAt));
    nonce.set(tag(key, nonce.subarray(0, NONCE_RANDOM + 8)), NONCE_RANDOM + 8);
    return { relayKey: toBase64Url(key.publicKey), nonce: toBase64Url(nonce), expiresAt };
  }

  /** The cheap checks — format, the nonce's MAC, its expiry — with no X25519 and no database. */
  precheck(c: AuthCredentials | undefined): ({ ok: true } & Prechecked) | { ok: false; reason: AuthFailure } {
    if (c === undefined) return { ok: false, reason: 'malformed' };
    const memberKey = fromBase64Url(c.key);
    const nonce = fromBase64Url(c.nonce);
    const proof = fromBase64Url(c.proof);
    if (memberKey?.length !== 32 || nonce?.length !== NONCE_BYTES || proof?.length !== 32) return { ok: false, reason: 'malformed' };
    const key = this.#keys().find((k) => sodium.memcmp(tag(k, nonce.subarray(0, NONCE_RANDOM + 8)), nonce.subarray(NONCE_RANDOM + 8)));
    if (key === undefined) return { ok: false, reason: 'unknown_key' };
    const expiresAt = Number(new DataView(nonce.buffer, nonce.byteOffset).getBigUint64(NONCE_RANDOM));
    if (expiresAt < this.#now()) return { ok: false, reason: 'expired' };
    return { ok: true, memberKey, nonce, proof, expiresAt, key };
  }

  /** The Diffie-Hellman proof check (one X25519): true when only the member key's owner could have made it. */
  proofValid(p: Prechecked): boolean {
    let ours: Uint8Array;
    try {
      ours = authProof(p.key.secretKey, p.memberKey, p.memberKey, p.key.publicKey, p.nonce);
    } catch {
      return false; // a low-order point makes scalarmult throw
    }
    return sodium.memcmp(ours, p.proof);
  }
}

/** The nonce's MAC under a key derived from `key`'s secret. */
function tag(key: AuthKeyPair, data: Uint8Array): Uint8Array {
  const nonceKey = sodium.crypto_generichash(32, utf8('backchannel/auth/nonce-key/v1'), key.secretKey);
  return sodium.crypto_generichash(NONCE_TAG, data, nonceKey);
}
