import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = fileURLToPath(new URL('..', import.meta.url));
const ALLOWED = new Set(['crypto/prekeys.ts', 'crypto/signatures.ts']);

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return /\.ts$/.test(name) && !/\.test\.ts$/.test(name) ? [path] : [];
  });
}

/** Every libsodium call that produces a signature; verifying and key generation are not signing. */
const SIGNING = /\bcrypto_sign(?:_detached|_final_create)?\b/;

describe('deniability by construction', () => {
  it('calls crypto_sign only from prekeys.ts and signatures.ts', () => {
    const signing = sources(SRC).filter((file) => SIGNING.test(readFileSync(file, 'utf8')));
    // The scan must see the two legitimate signers, or it is not scanning anything.
    expect(signing.map((file) => relative(SRC, file).split('\\').join('/')).sort()).toEqual(expect.arrayContaining([...ALLOWED]));
    const offenders = signing
      .map((file) => relative(SRC, file).split('\\').join('/'))
      .filter((file) => !ALLOWED.has(file));
    expect(offenders).toEqual([]);
  });
});
