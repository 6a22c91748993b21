/**
 * Runs Project Wycheproof vectors through libsodium exactly as the crypto layer calls it:
 * crypto_scalarmult (X25519), crypto_sign_verify_detached (Ed25519) and the IETF
 * XChaCha20-Poly1305 / ChaCha20-Poly1305 AEADs. The vectors are read from the shared folder, never
 * copied into the project.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { sodium, sodiumReady } from '../sodium.js';

const DIR = new URL('../../../../shared/vectors/wycheproof/', import.meta.url);

interface Vector {
  tcId: number;
  comment: string;
  flags: string[];
  result: 'valid' | 'invalid' | 'acceptable';
  [field: string]: unknown;
}

interface Group {
  tests: Vector[];
  [field: string]: unknown;
}

function load(name: string): Group[] {
  const file = JSON.parse(readFileSync(fileURLToPath(new URL(name, DIR)), 'utf8')) as { testGroups: Group[] };
  return file.testGroups;
}

function hex(v: unknown): Uint8Array {
  return sodium.from_hex(String(v));
}

function attempt<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch {
    return undefined;
  }
}

beforeAll(async () => {
  await sodiumReady();
});

describe('Wycheproof', () => {
  it('X25519 (crypto_scalarmult)', () => {
    let n = 0;
    for (const g of load('x25519_test.json')) {
      for (const t of g.tests) {
        n++;
        const shared = attempt(() => sodium.crypto_scalarmult(hex(t.private), hex(t.public)));
        const expected = String(t.shared);
        const label = `tcId ${t.tcId} ${t.comment} [${t.flags.join(',')}]`;
        if (t.result === 'valid') {
          expect(shared && sodium.to_hex(shared), label).toBe(expected);
        } else if (t.result === 'invalid') {
          expect(shared === undefined || sodium.to_hex(shared) !== expected, label).toBe(true);
        } else if (shared !== undefined) {
          // acceptable: libsodium refuses all-zero (low-order) outputs, which we rely on; otherwise it must match.
          expect(sodium.to_hex(shared), label).toBe(expected);
        } else {
          expect(/^0+$/.test(expected), `${label}: only an all-zero result may be refused`).toBe(true);
        }
      }
    }
    expect(n).toBeGreaterThan(500);
  });

  it('Ed25519 verify (crypto_sign_verify_detached)', () => {
    let n = 0;
    for (const g of load('ed25519_test.json')) {
      const pk = hex((g.publicKey as { pk: string }).pk);
      for (const t of g.tests) {
        n++;
        const ok =
          attempt(() => sodium.crypto_sign_verify_detached(hex(t.sig), hex(t.msg), pk)) ?? false;
        const label = `tcId ${t.tcId} ${t.comment}`;
        if (t.result === 'valid') expect(ok, label).toBe(true);
        else if (t.result === 'invalid') expect(ok, label).toBe(false);
      }
    }
    expect(n).toBeGreaterThan(100);
  });

  for (const [file, variant] of [
    ['xchacha20_poly1305_test.json', 'xchacha20poly1305'],
    ['chacha20_poly1305_test.json', 'chacha20poly1305'],
  ] as const) {
    it(`${variant} IETF AEAD encrypt and decrypt`, () => {
      const enc = variant === 'xchacha20poly1305' ? sodium.crypto_aead_xchacha20poly1305_ietf_encrypt : sodium.crypto_aead_chacha20poly1305_ietf_encrypt;
      const dec = variant === 'xchacha20poly1305' ? sodium.crypto_aead_xchacha20poly1305_ietf_decrypt : sodium.crypto_aead_chacha20poly1305_ietf_decrypt;
      let n = 0;
      for (const g of load(file)) {
        for (const t of g.tests) {
          n++;
          const label = `tcId ${t.tcId} ${t.comment} [${t.flags.join(',')}]`;
          const key = hex(t.key);
          const iv = hex(t.iv);
          const aad = hex(t.aad);
          const msg = hex(t.msg);
          const sealed = new Uint8Array([...hex(t.ct), ...hex(t.tag)]);
          const opened = attempt(() => dec(null, sealed, aad, iv, key));
          if (t.result === 'valid') {
            expect(opened && sodium.to_hex(opened), label).toBe(sodium.to_hex(msg));
            expect(sodium.to_hex(enc(msg, aad, null, iv, key)), label).toBe(sodium.to_hex(sealed));
          } else if (t.result === 'invalid') {
            // Includes wrong tags and unsupported nonce/key sizes: libsodium must refuse them all.
            expect(opened, label).toBeUndefined();
          }
        }
      }
      expect(n).toBeGreaterThan(300);
    });
  }
});
