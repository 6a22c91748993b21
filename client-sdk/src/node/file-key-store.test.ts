import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileKeyStore } from './file-key-store.js';

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bc-keystore-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('FileKeyStore', () => {
  it('survives a restart: what was put is read back by a new instance', async () => {
    const path = join(dir, 'nested', 'store.json');
    const a = await FileKeyStore.open(path);
    await a.put('state/channel', { counter: 3, keys: ['x', 'y'] });
    await a.batch([
      { type: 'put', key: 'k1', value: 'v1' },
      { type: 'put', key: 'k2', value: 2 },
    ]);
    await a.delete('k1');
    await a.close();
    const b = await FileKeyStore.open(path);
    expect(await b.get('state/channel')).toEqual({ counter: 3, keys: ['x', 'y'] });
    expect(await b.list()).toEqual(['k2', 'state/channel']);
    await b.close();
  });

  it('writes whole files atomically and leaves no temporary files behind', async () => {
    const path = join(dir, 'store.json');
    const store = await FileKeyStore.open(path);
    await Promise.all(Array.from({ length: 20 }, (_, i) => store.put(`k${i}`, i)));
    expect(await readdir(dir)).toEqual(['store.json']);
    const parsed = JSON.parse(await readFile(path, 'utf8')) as { entries: Record<string, string> };
    expect(Object.keys(parsed.entries)).toHaveLength(20);
    await store.close();
  });

  it('leaves the file unchanged when a batch holds a value JSON cannot keep', async () => {
    const path = join(dir, 'store.json');
    const store = await FileKeyStore.open(path);
    await store.put('a', 1);
    await expect(store.batch([{ type: 'put', key: 'b', value: 2 }, { type: 'put', key: 'c', value: Number.NaN }])).rejects.toThrow(TypeError);
    expect(await store.list()).toEqual(['a']);
    await store.put('d', 4);
    await store.close();
    const again = await FileKeyStore.open(path);
    expect(await again.list()).toEqual(['a', 'd']);
    await again.close();
  });

  it('refuses a file that is not a key store', async () => {
    const path = join(dir, 'other.json');
    await (await import('node:fs/promises')).writeFile(path, '{"hello":1}');
    await expect(FileKeyStore.open(path)).rejects.toThrow();
  });
});
