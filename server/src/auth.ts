import { authProof, sodium } from '@backchannel/client-sdk';
import { fromBase64Url, toBase64Url, utf8, type AuthCredentials, type Challenge } from '@backchannel/client-sdk/protocol';

const NONCE_RANDOM = 16;
const NONCE_TAG = 24;
const NONCE_BYTES = NONCE_RANDOM + 8 + NONCE_TAG;
const CHALLENGE_TTL_MS = 60_000;

/** Why an authentication attempt was refused (never sent in detail to the client). */
export type AuthFailure = 'malformed' | 'expired' | 'replayed' | 'bad_proof' | 'rate_limited';

/** Credentials that passed the cheap checks: well formed, a nonce this relay issued, not expired. */
export interface Prechecked {
  memberKey: Uint8Array;
  nonce: Uint8Array;
  proof: Uint8Array;
  expiresAt: number;
}

/**
 * Issues and checks Diffie-Hellman challenges. Nonces are self-authenticating (a MAC under a key
 * derived from the relay's auth secret), so any node sharing the key can check them without a
 * lookup; that each is used once, on any node, is the database's part (`store/auth-nonces.ts`).
 */
export class Authenticator {
  readonly #relayPublic: Uint8Array;
  readonly #relaySecret: Uint8Array;
  readonly #nonceKey: Uint8Array;
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

  /** The cheap checks — format, the nonce's MAC, its expiry — with no X25519 and no database. */
  precheck(c: AuthCredentials | undefined): ({ ok: true } & Prechecked) | { ok: false; reason: AuthFailure } {
    if (c === undefined) return { ok: false, reason: 'malformed' };
    const memberKey = fromBase64Url(c.key);
    const nonce = fromBase64Url(c.nonce);
    const proof = fromBase64Url(c.proof);
    if (memberKey?.length !== 32 || nonce?.length !== NONCE_BYTES || proof?.length !== 32) return { ok: false, reason: 'malformed' };
    const expected = this.#tag(nonce.subarray(0, NONCE_RANDOM + 8));
    if (!sodium.memcmp(expected, nonce.subarray(NONCE_RANDOM + 8))) return { ok: false, reason: 'malformed' };
    const expiresAt = Number(new DataView(nonce.buffer, nonce.byteOffset).getBigUint64(NONCE_RANDOM));
    if (expiresAt < this.#now()) return { ok: false, reason: 'expired' };
    return { ok: true, memberKey, nonce, proof, expiresAt };
  }

  /** The Diffie-Hellman proof check (one X25519): true when only the member key's owner could have made it. */
  proofValid(p: Prechecked): boolean {
    let ours: Uint8Array;
    try {
      ours = authProof(this.#relaySecret, p.memberKey, p.memberKey, this.#relayPublic, p.nonce);
    } catch {
      return false; // a low-order point makes scalarmult throw
    }
    return sodium.memcmp(ours, p.proof);
  }

  #tag(data: Uint8Array): Uint8Array {
    return sodium.crypto_generichash(NONCE_TAG, data, this.#nonceKey);
  }
}
