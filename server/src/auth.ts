import { authProof, sodium } from '@backchannel/client-sdk';
import { fromBase64Url, toBase64Url, utf8, type Challenge } from '@backchannel/client-sdk/protocol';

const NONCE_RANDOM = 16;
const NONCE_TAG = 24;
const NONCE_BYTES = NONCE_RANDOM + 8 + NONCE_TAG;
const CHALLENGE_TTL_MS = 60_000;

/** Why an authentication attempt was refused (never sent in detail to the client). */
export type AuthFailure = 'malformed' | 'expired' | 'replayed' | 'bad_proof';

/**
 * Issues and checks Diffie-Hellman challenges. Nonces are self-authenticating (a MAC under a key
 * derived from the relay's auth secret), so any node sharing the key can check them; each is
 * accepted once per node and only until it expires.
 */
export class Authenticator {
  readonly #relayPublic: Uint8Array;
  readonly #relaySecret: Uint8Array;
  readonly #nonceKey: Uint8Array;
  readonly #used = new Map<string, number>();
  readonly #now: () => number;

  constructor(relayPublic: Uint8Array, relaySecret: Uint8Array, now: () => number = Date.now) {
    this.#relayPublic = relayPublic;
    this.#relaySecret = relaySecret;
    this.#nonceKey = sodium.crypto_generichash(32, utf8('backchannel/auth/nonce-key/v1'), relaySecret);
    this.#now = now;
  }

  /** A fresh challenge for `GET /v1/challenge`. */
  challenge(): Challenge {
    const expiresAt = this.#now() + CHALLENGE_TTL_MS;
    const nonce = new Uint8Array(NONCE_BYTES);
    nonce.set(sodium.randombytes_buf(NONCE_RANDOM), 0);
    new DataView(nonce.buffer).setBigUint64(NONCE_RANDOM, BigInt(expiresAt));
    nonce.set(this.#tag(nonce.subarray(0, NONCE_RANDOM + 8)), NONCE_RANDOM + 8);
    return { relayKey: toBase64Url(this.#relayPublic), nonce: toBase64Url(nonce), expiresAt };
  }

  /** Checks an upgrade's (key, nonce, proof); returns the member key bytes or the failure. */
  verify(keyText: string, nonceText: string, proofText: string): { ok: true; memberKey: Uint8Array } | { ok: false; reason: AuthFailure } {
    const memberKey = fromBase64Url(keyText);
    const nonce = fromBase64Url(nonceText);
    const proof = fromBase64Url(proofText);
    if (memberKey?.length !== 32 || nonce?.length !== NONCE_BYTES || proof?.length !== 32) return { ok: false, reason: 'malformed' };
    const expected = this.#tag(nonce.subarray(0, NONCE_RANDOM + 8));
    if (!sodium.memcmp(expected, nonce.subarray(NONCE_RANDOM + 8))) return { ok: false, reason: 'malformed' };
    const now = this.#now();
    const expiresAt = Number(new DataView(nonce.buffer, nonce.byteOffset).getBigUint64(NONCE_RANDOM));
    if (expiresAt < now) return { ok: false, reason: 'expired' };
    this.#prune(now);
    if (this.#used.has(nonceText)) return { ok: false, reason: 'replayed' };
    let ours: Uint8Array;
    try {
      ours = authProof(this.#relaySecret, memberKey, memberKey, this.#relayPublic, nonce);
    } catch {
      return { ok: false, reason: 'bad_proof' }; // a low-order point makes scalarmult throw
    }
    if (!sodium.memcmp(ours, proof)) return { ok: false, reason: 'bad_proof' };
    this.#used.set(nonceText, expiresAt);
    return { ok: true, memberKey };
  }

  #tag(data: Uint8Array): Uint8Array {
    return sodium.crypto_generichash(NONCE_TAG, data, this.#nonceKey);
  }

  #prune(now: number): void {
    if (this.#used.size < 1024) return;
    for (const [nonce, expiresAt] of this.#used) if (expiresAt < now) this.#used.delete(nonce);
  }
}
