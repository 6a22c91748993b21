import { authProof, sodium } from '@backchannel/client-sdk';
import { fromBase64Url, toBase64Url, utf8, type Challenge } from '@backchannel/client-sdk/protocol';

const NONCE_RANDOM = 16;
const NONCE_TAG = 24;
const NONCE_BYTES = NONCE_RANDOM + 8 + NONCE_TAG;
const CHALLENGE_TTL_MS = 60_000;

/**
 * Why an authentication attempt was refused (never sent in detail to the client).
 * `unknown_key`: the nonce was issued under an auth key this node does not (yet) hold.
 */
export type AuthFailure = 'malformed' | 'unknown_key' | 'expired' | 'replayed' | 'bad_proof';

/** An auth key pair the relay accepts proofs against. */
export interface AuthKeyPair {
  readonly publicKey: Uint8Array;
  readonly secretKey: Uint8Array;
}

/**
 * Issues and checks Diffie-Hellman challenges. Nonces are self-authenticating (a MAC under a key
 * derived from the relay's auth secret), so any node sharing the key can check them; each is
 * accepted once per node and only until it expires. During an auth-key rotation `keys()` holds
 * the current key first (challenges are issued under it) and the keys retired within the grace
 * period after it, so a challenge fetched from one node verifies on every other.
 */
export class Authenticator {
  readonly #keys: () => readonly AuthKeyPair[];
  readonly #used = new Map<string, number>();
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

  /** Checks an upgrade's (key, nonce, proof); returns the member key bytes or the failure. */
  verify(keyText: string, nonceText: string, proofText: string): { ok: true; memberKey: Uint8Array } | { ok: false; reason: AuthFailure } {
    const memberKey = fromBase64Url(keyText);
    const nonce = fromBase64Url(nonceText);
    const proof = fromBase64Url(proofText);
    if (memberKey?.length !== 32 || nonce?.length !== NONCE_BYTES || proof?.length !== 32) return { ok: false, reason: 'malformed' };
    const key = this.#keys().find((k) => sodium.memcmp(tag(k, nonce.subarray(0, NONCE_RANDOM + 8)), nonce.subarray(NONCE_RANDOM + 8)));
    if (key === undefined) return { ok: false, reason: 'unknown_key' };
    const now = this.#now();
    const expiresAt = Number(new DataView(nonce.buffer, nonce.byteOffset).getBigUint64(NONCE_RANDOM));
    if (expiresAt < now) return { ok: false, reason: 'expired' };
    this.#prune(now);
    if (this.#used.has(nonceText)) return { ok: false, reason: 'replayed' };
    let ours: Uint8Array;
    try {
      ours = authProof(key.secretKey, memberKey, memberKey, key.publicKey, nonce);
    } catch {
      return { ok: false, reason: 'bad_proof' }; // a low-order point makes scalarmult throw
    }
    if (!sodium.memcmp(ours, proof)) return { ok: false, reason: 'bad_proof' };
    this.#used.set(nonceText, expiresAt);
    return { ok: true, memberKey };
  }

  #prune(now: number): void {
    if (this.#used.size < 1024) return;
    for (const [nonce, expiresAt] of this.#used) if (expiresAt < now) this.#used.delete(nonce);
  }
}

/** The nonce's MAC under a key derived from `key`'s secret. */
function tag(key: AuthKeyPair, data: Uint8Array): Uint8Array {
  const nonceKey = sodium.crypto_generichash(32, utf8('backchannel/auth/nonce-key/v1'), key.secretKey);
  return sodium.crypto_generichash(NONCE_TAG, data, nonceKey);
}
