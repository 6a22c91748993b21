import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/**
 * Where Backchannel may sign (DESIGN.md): signed prekeys, group-log changes, invitations,
 * redemptions, disclosure consents and checkpoints (in the SDK), and the relay's signatures on
 * formal records and on the hand-over from a retiring record key to the next. Nothing else — above all,
 * never message content — so transcripts stay deniable.
 */
const ALLOWED = ['client-sdk/src/crypto/prekeys.ts', 'client-sdk/src/crypto/signatures.ts', 'server/src/disclosure/formal-log.ts', 'server/src/store/relay-keys.ts'];
const SIGNING = /\bcrypto_sign(?:_detached|_final_create)?\(/;

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return /\.ts$/.test(name) && !/\.test\.ts$/.test(name) ? [path] : [];
  });
}

describe('signatures appear only where the design allows', () => {
  it('finds signing calls in the SDK and the relay only at the allowed sites', () => {
    const signing = ['client-sdk/src', 'server/src']
      .flatMap((dir) => sources(join(ROOT, dir)))
      .filter((file) => SIGNING.test(readFileSync(file, 'utf8')))
      .map((file) => relative(ROOT, file).split('\\').join('/'))
      .sort();
    expect(signing).toEqual([...ALLOWED].sort());
  });
});
