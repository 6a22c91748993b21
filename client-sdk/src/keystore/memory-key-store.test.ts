import { describe, expect, it } from 'vitest';
import { MemoryKeyStore } from './memory-key-store.js';

describe('MemoryKeyStore', () => {
  it('stores copies, lists by prefix, and applies batches atomically', async () => {
    const store = new MemoryKeyStore();
    const value = { a: [1, 'two', null], b: { c: true } };
    await store.put('session/x', value);
    value.a.push(3);
    expect(await store.get('session/x')).toEqual({ a: [1, 'two', null], b: { c: true } });
    await store.put('keys/me', 'k');
    expect(await store.list('session/')).toEqual(['session/x']);
    expect(await store.list()).toEqual(['keys/me', 'session/x']);
    await expect(
      store.batch([
        { type: 'put', key: 'session/y', value: 1 },
        { type: 'put', key: 'session/z', value: new Uint8Array(2) },
      ]),
    ).rejects.toThrow(TypeError);
    expect(await store.get('session/y')).toBeUndefined();
    await store.batch([
      { type: 'put', key: 'session/y', value: 1 },
      { type: 'delete', key: 'session/x' },
    ]);
    expect(await store.list('session/')).toEqual(['session/y']);
    await store.delete('session/y');
    expect(await store.get('session/y')).toBeUndefined();
  });
});
