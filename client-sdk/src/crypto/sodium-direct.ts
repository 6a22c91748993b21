/**
 * The per-message libsodium calls — `crypto_kdf_derive_from_key` and XChaCha20-Poly1305 — without
 * the wrappers' per-call overhead.
 *
 * For every call, libsodium-wrappers allocates and frees a buffer in WebAssembly memory per
 * argument and per result, and `crypto_kdf_derive_from_key` also encodes its context string with
 * a fresh `TextEncoder`. Sealing a message to seven recipients makes 28 derivations and 8 AEAD
 * calls, and that overhead was about a quarter of it. The wrappers expose the compiled module
 * (`sodium.libsodium`), so this calls the very same C functions through scratch memory allocated
 * once: byte-identical results (a test compares them with the wrappers' across ids, contexts,
 * keys, lengths and tampered inputs) at a fraction of the cost. The scratch memory is zeroed
 * after every call, which the wrappers do not do for the copies of keys and plaintexts they free.
 * Should a wrappers build not expose the module, the wrapper functions are used instead.
 */
import { sodium } from '../sodium.js';

/** The part of the compiled libsodium module this needs (64-bit sizes split in low, high halves). */
interface LibsodiumModule {
  readonly HEAPU8: Uint8Array;
  _malloc(size: number): number;
  _free(pointer: number): void;
  _crypto_kdf_derive_from_key(out: number, outLength: number, idLow: number, idHigh: number, context: number, key: number): number;
  _crypto_aead_xchacha20poly1305_ietf_encrypt(
    c: number, cLengthOut: number, m: number, mLengthLow: number, mLengthHigh: number,
    ad: number, adLengthLow: number, adLengthHigh: number, nsec: number, nonce: number, key: number,
  ): number;
  _crypto_aead_xchacha20poly1305_ietf_decrypt(
    m: number, mLengthOut: number, nsec: number, c: number, cLengthLow: number, cLengthHigh: number,
    ad: number, adLengthLow: number, adLengthHigh: number, nonce: number, key: number,
  ): number;
}

/** The calls, each equivalent to the libsodium-wrappers function(s) named. */
export interface DirectSodium {
  /** `crypto_kdf_derive_from_key(length, id, context, key)`: 16–64 bytes, an 8-character ASCII context. */
  deriveSubkey(length: number, id: number, context: string, key: Uint8Array): Uint8Array;
  /** `crypto_aead_xchacha20poly1305_ietf_encrypt(message, ad, null, nonce, key)`. */
  aeadEncrypt(message: Uint8Array, ad: Uint8Array, nonce: Uint8Array, key: Uint8Array): Uint8Array;
  /** `crypto_aead_xchacha20poly1305_ietf_decrypt(null, ciphertext, ad, nonce, key)`: throws when it does not authenticate. */
  aeadDecrypt(ciphertext: Uint8Array, ad: Uint8Array, nonce: Uint8Array, key: Uint8Array): Uint8Array;
  /**
   * {@link aeadEncrypt} with `nonce` under key = subkey 1 (32 bytes) of `baseKey` in `context`,
   * derived where it is used: the key never becomes a JavaScript array.
   */
  aeadEncryptUnderSubkey(message: Uint8Array, ad: Uint8Array, nonce: Uint8Array, baseKey: Uint8Array, context: string): Uint8Array;
  /** {@link aeadDecrypt} under the subkey {@link aeadEncryptUnderSubkey} uses. */
  aeadDecryptUnderSubkey(ciphertext: Uint8Array, ad: Uint8Array, nonce: Uint8Array, baseKey: Uint8Array, context: string): Uint8Array;
}

const KDF_KEY_BYTES = 32;
const KDF_CONTEXT_BYTES = 8;
const KDF_MIN_OUT = 16;
const KDF_MAX_OUT = 64;
const AEAD_KEY_BYTES = 32;
const AEAD_NONCE_BYTES = 24;
const AEAD_TAG_BYTES = 16;
const HIGH = 0x1_0000_0000;

/** Scratch layout: kdf key, kdf context, AEAD key (or kdf output), AEAD nonce, then AD, input, output. */
const BASE_AT = 0;
const CONTEXT_AT = BASE_AT + KDF_KEY_BYTES;
const KEY_AT = CONTEXT_AT + KDF_CONTEXT_BYTES;
const NONCE_AT = KEY_AT + AEAD_KEY_BYTES;
const DATA_AT = Math.max(NONCE_AT + AEAD_NONCE_BYTES, KEY_AT + KDF_MAX_OUT);

function isLibsodiumModule(lib: unknown): lib is LibsodiumModule {
  if (typeof lib !== 'object' || lib === null) return false;
  const m = lib as Partial<Record<keyof LibsodiumModule, unknown>>;
  return (
    m.HEAPU8 instanceof Uint8Array &&
    typeof m._malloc === 'function' &&
    typeof m._free === 'function' &&
    typeof m._crypto_kdf_derive_from_key === 'function' &&
    typeof m._crypto_aead_xchacha20poly1305_ietf_encrypt === 'function' &&
    typeof m._crypto_aead_xchacha20poly1305_ietf_decrypt === 'function'
  );
}

function checkLength(what: string, bytes: Uint8Array, length: number): void {
  if (bytes.length !== length) throw new RangeError(`${what} must be ${length} bytes`);
}

/** Refuses what libsodium does not define (the wrapper ignores the C function's error result). */
function checkKdfArguments(length: number, id: number, context: string, key: Uint8Array): void {
  if (!Number.isInteger(length) || length < KDF_MIN_OUT || length > KDF_MAX_OUT) throw new RangeError(`bad subkey length: ${length}`);
  if (!Number.isSafeInteger(id) || id < 0) throw new RangeError(`bad subkey id: ${id}`);
  checkLength('kdf key', key, KDF_KEY_BYTES);
  if (context.length !== KDF_CONTEXT_BYTES || !/^[\x20-\x7e]*$/.test(context)) throw new RangeError('kdf context must be 8 ASCII characters');
}

function wrapperSubkey(length: number, id: number, context: string, key: Uint8Array): Uint8Array {
  checkKdfArguments(length, id, context, key);
  // As a bigint: the wrapper takes plain numbers below 2^31 only.
  return sodium.crypto_kdf_derive_from_key(length, BigInt(id), context, key);
}

/** Runs `use` with subkey 1 (32 B) of `baseKey`, then zeroes it. */
function withWrapperSubkey<T>(baseKey: Uint8Array, context: string, use: (key: Uint8Array) => T): T {
  const key = wrapperSubkey(AEAD_KEY_BYTES, 1, context, baseKey);
  try {
    return use(key);
  } finally {
    key.fill(0);
  }
}

const viaWrappers: DirectSodium = {
  deriveSubkey: wrapperSubkey,
  aeadEncrypt: (message, ad, nonce, key) => sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(message, ad, null, nonce, key),
  aeadDecrypt: (ciphertext, ad, nonce, key) => sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(null, ciphertext, ad, nonce, key),
  aeadEncryptUnderSubkey: (message, ad, nonce, baseKey, context) =>
    withWrapperSubkey(baseKey, context, (key) => sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(message, ad, null, nonce, key)),
  aeadDecryptUnderSubkey: (ciphertext, ad, nonce, baseKey, context) =>
    withWrapperSubkey(baseKey, context, (key) => sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(null, ciphertext, ad, nonce, key)),
};

/** Where an AEAD key comes from (given, or derived from a base key), and the nonce. */
type Keying = { nonce: Uint8Array } & ({ key: Uint8Array } | { baseKey: Uint8Array; context: string });

/**
 * The calls through `lib`'s exported C functions, or through the wrappers when `lib` is not a
 * usable compiled libsodium module. Call after `sodiumReady()`.
 */
export function directSodium(lib: unknown): DirectSodium {
  if (!isLibsodiumModule(lib)) return viaWrappers;
  let scratch = 0;
  let capacity = 0;

  // Every call reads `lib.HEAPU8` after `reserve`: the view is replaced whenever memory grows.
  /** Scratch memory of at least `size` bytes (zeroed after every use, so also before this one). */
  const reserve = (size: number): number => {
    if (size > capacity) {
      if (scratch !== 0) lib._free(scratch);
      capacity = Math.max(size, 2 * capacity, 512);
      scratch = lib._malloc(capacity);
      if (scratch === 0) throw new RangeError('out of WebAssembly memory');
    }
    return scratch;
  };

  /** Derives `length` bytes of subkey `id` at `outAt` from the kdf key and context written at `at`. */
  const derive = (at: number, outAt: number, length: number, id: number): number =>
    lib._crypto_kdf_derive_from_key(outAt, length, id >>> 0, Math.floor(id / HIGH), at + CONTEXT_AT, at + BASE_AT);
  const writeKdfInput = (heap: Uint8Array, at: number, key: Uint8Array, context: string): void => {
    heap.set(key, at + BASE_AT);
    for (let i = 0; i < KDF_CONTEXT_BYTES; i++) heap[at + CONTEXT_AT + i] = context.charCodeAt(i);
  };

  const aead = (encrypt: boolean, input: Uint8Array, ad: Uint8Array, keying: Keying): Uint8Array => {
    checkLength('nonce', keying.nonce, AEAD_NONCE_BYTES);
    if ('key' in keying) checkLength('key', keying.key, AEAD_KEY_BYTES);
    else checkKdfArguments(AEAD_KEY_BYTES, 1, keying.context, keying.baseKey);
    if (!encrypt && input.length < AEAD_TAG_BYTES) throw new Error('ciphertext is too short');
    const outLength = encrypt ? input.length + AEAD_TAG_BYTES : input.length - AEAD_TAG_BYTES;
    const size = DATA_AT + ad.length + input.length + outLength;
    const at = reserve(size);
    const adAt = at + DATA_AT;
    const inputAt = adAt + ad.length;
    const outAt = inputAt + input.length;
    const heap = lib.HEAPU8;
    let rc = 0;
    heap.set(keying.nonce, at + NONCE_AT);
    if ('key' in keying) {
      heap.set(keying.key, at + KEY_AT);
    } else {
      writeKdfInput(heap, at, keying.baseKey, keying.context);
      rc |= derive(at, at + KEY_AT, AEAD_KEY_BYTES, 1);
    }
    heap.set(ad, adAt);
    heap.set(input, inputAt);
    if (rc === 0) {
      rc = encrypt
        ? lib._crypto_aead_xchacha20poly1305_ietf_encrypt(outAt, 0, inputAt, input.length, 0, adAt, ad.length, 0, 0, at + NONCE_AT, at + KEY_AT)
        : lib._crypto_aead_xchacha20poly1305_ietf_decrypt(outAt, 0, 0, inputAt, input.length, 0, adAt, ad.length, 0, at + NONCE_AT, at + KEY_AT);
    }
    const out = rc === 0 ? lib.HEAPU8.slice(outAt, outAt + outLength) : undefined;
    lib.HEAPU8.fill(0, at, at + size);
    if (out === undefined) throw encrypt ? new RangeError('encryption failed') : new Error('ciphertext cannot be decrypted using that key');
    return out;
  };

  return {
    deriveSubkey(length, id, context, key) {
      checkKdfArguments(length, id, context, key);
      const size = KEY_AT + KDF_MAX_OUT;
      const at = reserve(size);
      writeKdfInput(lib.HEAPU8, at, key, context);
      const rc = derive(at, at + KEY_AT, length, id);
      const out = lib.HEAPU8.slice(at + KEY_AT, at + KEY_AT + length);
      lib.HEAPU8.fill(0, at, at + size);
      if (rc !== 0) throw new RangeError('crypto_kdf_derive_from_key failed');
      return out;
    },
    aeadEncrypt: (message, ad, nonce, key) => aead(true, message, ad, { key, nonce }),
    aeadDecrypt: (ciphertext, ad, nonce, key) => aead(false, ciphertext, ad, { key, nonce }),
    aeadEncryptUnderSubkey: (message, ad, nonce, baseKey, context) => aead(true, message, ad, { nonce, baseKey, context }),
    aeadDecryptUnderSubkey: (ciphertext, ad, nonce, baseKey, context) => aead(false, ciphertext, ad, { nonce, baseKey, context }),
  };
}

let shared: DirectSodium | undefined;

/** The calls through the loaded libsodium. Call after `sodiumReady()` (looked up on first use). */
export function direct(): DirectSodium {
  shared ??= directSodium((sodium as unknown as { readonly libsodium?: unknown }).libsodium);
  return shared;
}
