import { describe, expect, it } from 'vitest';
import { BackchannelError } from '../protocol/index.js';
import { StoreCipher, generateStoreKey } from './sealed-entries.js';

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    if (BackchannelError.is(err)) return err.code;
    throw err;
  }
}

describe('StoreCipher', () => {
  it('opens what it sealed, with a fresh IV every time', async () => {
    const cipher = await StoreCipher.from(await generateStoreKey());
    const entries = new Map([['a', '"x"']]);
    const one = await cipher.seal(entries, 'ctx');
    const two = await cipher.seal(entries, 'ctx');
    expect(one.iv).not.toEqual(two.iv);
    expect(await cipher.open(one, 'ctx')).toEqual(entries);
  });

  it('does not open a ciphertext moved to another store (the context is authenticated)', async () => {
    const cipher = await StoreCipher.from(crypto.getRandomValues(new Uint8Array(32)));
    const sealed = await cipher.seal(new Map([['a', '1']]), 'indexeddb/one');
    expect(await codeOf(cipher.open(sealed, 'indexeddb/two'))).toBe('keystore_wrong_key');
  });

  it('refuses an extractable CryptoKey, whose bytes script could read out', async () => {
    const extractable = await crypto.subtle.generateKey({ name: 'AES-GCM', length: 256 }, true, ['encrypt', 'decrypt']);
    await expect(StoreCipher.from(extractable)).rejects.toThrow(RangeError);
  });
});
