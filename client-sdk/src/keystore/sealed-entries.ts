/**
 * What an encrypted key store keeps at rest: all of its entries (names and values) as one
 * AES-256-GCM ciphertext under a key the application supplies, with a fresh random 96-bit IV on
 * every write. WebCrypto does the sealing in Node (≥ 20) and in browsers alike, so the key can
 * be a non-extractable `CryptoKey`: script on the page can use it but never read it out.
 *
 * One ciphertext for the whole store, not one per entry: entry names (which carry channel ids)
 * are hidden too, and a file or record cannot be mixed from entries of different versions.
 * Random IVs are safe for 2^32 writes per key (NIST SP 800-38D), far more than a store makes.
 *
 * Failing to authenticate is `keystore_wrong_key`: with AES-GCM a wrong key and an altered
 * ciphertext look the same, and in both cases nothing may be read or overwritten.
 */
import { BackchannelError, fromUtf8, utf8 } from '../protocol/index.js';

/** A key store key: a non-extractable AES-GCM `CryptoKey`, or 32 raw bytes (imported as one). */
export type StoreKey = CryptoKey | Uint8Array;

const LABEL = 'backchannel/keystore/v2';
const IV_BYTES = 12;
const KEY_BYTES = 32;

/** Sealed entries: the IV and the AES-GCM ciphertext (with its tag). */
export interface SealedEntries {
  iv: Uint8Array<ArrayBuffer>;
  ciphertext: Uint8Array<ArrayBuffer>;
}

/** A fresh non-extractable AES-256-GCM key for a key store (keep it as the application's secret). */
export function generateStoreKey(): Promise<CryptoKey> {
  return globalThis.crypto.subtle.generateKey({ name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']);
}

/** Associated data: the label and where the ciphertext belongs (a store's name, its KDF header). */
function associatedData(context: string): Uint8Array<ArrayBuffer> {
  return Uint8Array.from(utf8(`${LABEL}\u0000${context}`));
}

/** Seals and opens a key store's entries under one AES-GCM key, which it never lets out. */
export class StoreCipher {
  readonly #key: CryptoKey;

  private constructor(key: CryptoKey) {
    this.#key = key;
  }

  /**
   * A cipher for `key`. Raw bytes (exactly 32) are imported non-extractable (the caller zeroes
   * its own copy when it wishes); a `CryptoKey` must be a non-extractable AES-GCM key allowed to
   * encrypt and decrypt.
   */
  static async from(key: StoreKey): Promise<StoreCipher> {
    if (key instanceof Uint8Array) {
      if (key.length !== KEY_BYTES) throw new RangeError(`a key store key is ${KEY_BYTES} bytes`);
      const raw = Uint8Array.from(key);
      try {
        return new StoreCipher(await globalThis.crypto.subtle.importKey('raw', raw, { name: 'AES-GCM' }, false, ['encrypt', 'decrypt']));
      } finally {
        raw.fill(0);
      }
    }
    if (key.algorithm.name !== 'AES-GCM' || !key.usages.includes('encrypt') || !key.usages.includes('decrypt')) {
      throw new RangeError('a key store CryptoKey must be an AES-GCM key for encrypt and decrypt');
    }
    if (key.extractable) throw new RangeError('a key store CryptoKey must be non-extractable');
    return new StoreCipher(key);
  }

  /**
   * Seals `entries` (name → JSON text); `context` is authenticated with them, so a ciphertext
   * moved to another store or under another KDF header does not open.
   */
  async seal(entries: ReadonlyMap<string, string>, context: string): Promise<SealedEntries> {
    const iv = globalThis.crypto.getRandomValues(new Uint8Array(IV_BYTES));
    const plaintext = Uint8Array.from(utf8(JSON.stringify(Object.fromEntries(entries))));
    try {
      const sealed = await globalThis.crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: associatedData(context) }, this.#key, plaintext);
      return { iv, ciphertext: new Uint8Array(sealed) };
    } finally {
      plaintext.fill(0);
    }
  }

  /**
   * Opens what {@link StoreCipher.seal} sealed. Errors: `keystore_wrong_key` (the key does not
   * open it, or it was altered), `keystore_invalid` (it opens but is not a key store's entries).
   */
  async open(sealed: SealedEntries, context: string): Promise<Map<string, string>> {
    if (sealed.iv.length !== IV_BYTES) throw new BackchannelError('keystore_invalid', 'key store IV has the wrong length');
    let opened: Uint8Array;
    try {
      opened = new Uint8Array(
        await globalThis.crypto.subtle.decrypt({ name: 'AES-GCM', iv: sealed.iv, additionalData: associatedData(context) }, this.#key, sealed.ciphertext),
      );
    } catch (cause) {
      throw new BackchannelError('keystore_wrong_key', 'the key or passphrase does not open this key store', { cause });
    }
    try {
      const parsed: unknown = JSON.parse(fromUtf8(opened));
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new TypeError('not an object');
      const entries = new Map<string, string>();
      for (const [name, text] of Object.entries(parsed)) {
        if (typeof text !== 'string') throw new TypeError('entry is not JSON text');
        entries.set(name, text);
      }
      return entries;
    } catch (cause) {
      throw new BackchannelError('keystore_invalid', 'key store contents are not a Backchannel key store', { cause });
    } finally {
      opened.fill(0);
    }
  }
}
