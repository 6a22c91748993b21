import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BackchannelError } from '../protocol/index.js';
import { FileKeyStore } from './file-key-store.js';

let dir: string;
const key = { key: new Uint8Array(randomBytes(32)) };
/** The lowest cost the store accepts keeps these tests fast; the default is 2^17. */
const passphrase = (p: string) => ({ passphrase: p, scryptN: 2 ** 14 });

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    if (BackchannelError.is(err)) return err.code;
    throw err;
  }
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bc-keystore-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('FileKeyStore', () => {
  it('survives a restart: what was put is read back by a new instance', async () => {
    const path = join(dir, 'nested', 'store.json');
    const a = await FileKeyStore.open(path, key);
    await a.put('state/channel', { counter: 3, keys: ['x', 'y'] });
    await a.batch([
      { type: 'put', key: 'k1', value: 'v1' },
      { type: 'put', key: 'k2', value: 2 },
    ]);
    await a.delete('k1');
    await a.close();
    const b = await FileKeyStore.open(path, key);
    expect(await b.get('state/channel')).toEqual({ counter: 3, keys: ['x', 'y'] });
    expect(await b.list()).toEqual(['k2', 'state/channel']);
    await b.close();
  });

  it('writes whole files atomically, 0600 in a new folder 0700, and leaves no temporary files behind', async () => {
    const path = join(dir, 'keys', 'store.json');
    const store = await FileKeyStore.open(path, key);
    await Promise.all(Array.from({ length: 20 }, (_, i) => store.put(`k${i}`, i)));
    expect(await readdir(join(dir, 'keys'))).toEqual(['store.json']);
    expect((await stat(join(dir, 'keys'))).mode & 0o777).toBe(0o700);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    await store.close();
    expect(await (await FileKeyStore.open(path, key)).list()).toHaveLength(20);
  });

  it('keeps names and values only as ciphertext: the file holds none of them', async () => {
    const path = join(dir, 'store.json');
    const store = await FileKeyStore.open(path, passphrase('correct horse battery staple'));
    const secret = randomBytes(32).toString('base64url');
    await store.put('backchannel/channel/NAME-MARKER-4417', { secret, draft: 'DRAFT-MARKER-5521' });
    await store.close();
    const raw = await readFile(path, 'utf8');
    for (const needle of ['NAME-MARKER-4417', 'DRAFT-MARKER-5521', secret, 'correct horse']) expect(raw).not.toContain(needle);
    expect(JSON.parse(raw)).toMatchObject({ version: 2, kdf: { name: 'scrypt', N: 2 ** 14, r: 8, p: 1 } });
  });

  it('refuses a wrong passphrase with keystore_wrong_key and changes nothing on disk', async () => {
    const path = join(dir, 'store.json');
    const store = await FileKeyStore.open(path, passphrase('the right one'));
    await store.put('a', 1);
    await store.close();
    const before = await readFile(path);
    expect(await codeOf(FileKeyStore.open(path, passphrase('the wrong one')))).toBe('keystore_wrong_key');
    expect(await codeOf(FileKeyStore.open(path, key))).toBe('keystore_wrong_key');
    expect(await readFile(path)).toEqual(before);
    expect(await readdir(dir)).toEqual(['store.json']);
    const again = await FileKeyStore.open(path, passphrase('the right one'));
    expect(await again.get('a')).toBe(1);
    await again.close();
  });

  it('refuses a file whose ciphertext or KDF header was altered', async () => {
    const path = join(dir, 'store.json');
    const store = await FileKeyStore.open(path, passphrase('pass'));
    await store.put('a', 1);
    await store.close();
    const good = JSON.parse(await readFile(path, 'utf8')) as { ciphertext: string; kdf: { salt: string; N: number } };
    const flipped = Buffer.from(good.ciphertext, 'base64url');
    flipped[0]! ^= 1;
    await writeFile(path, JSON.stringify({ ...good, ciphertext: flipped.toString('base64url') }));
    expect(await codeOf(FileKeyStore.open(path, passphrase('pass')))).toBe('keystore_wrong_key');
    // A cost lowered below the floor is refused before any work is done for it.
    await writeFile(path, JSON.stringify({ ...good, kdf: { ...good.kdf, N: 2 ** 10 } }));
    expect(await codeOf(FileKeyStore.open(path, passphrase('pass')))).toBe('keystore_invalid');
  });

  it('leaves the file unchanged when a batch holds a value JSON cannot keep', async () => {
    const path = join(dir, 'store.json');
    const store = await FileKeyStore.open(path, key);
    await store.put('a', 1);
    await expect(store.batch([{ type: 'put', key: 'b', value: 2 }, { type: 'put', key: 'c', value: Number.NaN }])).rejects.toThrow(TypeError);
    expect(await store.list()).toEqual(['a']);
    await store.put('d', 4);
    await store.close();
    const again = await FileKeyStore.open(path, key);
    expect(await again.list()).toEqual(['a', 'd']);
    await again.close();
  });

  it('refuses a file that is not a key store', async () => {
    const path = join(dir, 'other.json');
    await writeFile(path, '{"hello":1}');
    expect(await codeOf(FileKeyStore.open(path, key))).toBe('keystore_invalid');
  });

  it('migrates an unencrypted store of an older SDK, which open refuses until then', async () => {
    const path = join(dir, 'old.json');
    await writeFile(path, JSON.stringify({ version: 1, entries: { 'backchannel/channel/OLD-NAME-8812': JSON.stringify({ secret: 'OLD-SECRET-3301' }) } }), { mode: 0o644 });
    expect(await codeOf(FileKeyStore.open(path, passphrase('pass')))).toBe('keystore_plaintext');
    expect(await FileKeyStore.migrate(path, passphrase('pass'))).toBe(true);
    const raw = await readFile(path, 'utf8');
    expect(raw).not.toContain('OLD-NAME-8812');
    expect(raw).not.toContain('OLD-SECRET-3301');
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(await FileKeyStore.migrate(path, passphrase('pass'))).toBe(false);
    const store = await FileKeyStore.open(path, passphrase('pass'));
    expect(await store.get('backchannel/channel/OLD-NAME-8812')).toEqual({ secret: 'OLD-SECRET-3301' });
    await store.close();
  });
});
