import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openKeyStore } from '../../docs/examples/key-store.js';
import { main } from '../../docs/examples/two-parties.js';
import { startTestRelay, type TestRelay } from '../support/relay.js';

describe('docs/sdk.md', () => {
  let relay: TestRelay;
  beforeAll(async () => {
    relay = await startTestRelay();
  });
  afterAll(async () => {
    await relay.close();
  });

  it('shows the two-party example exactly as the file the test runs', async () => {
    const doc = await readFile(new URL('../../docs/sdk.md', import.meta.url), 'utf8');
    const example = await readFile(new URL('../../docs/examples/two-parties.ts', import.meta.url), 'utf8');
    expect(doc).toContain(example.trim());
  });

  it('runs the two-party example against a real relay: Bob hears Alice', async () => {
    expect(await main(relay.url)).toEqual(['We can accept the draft, with one change.']);
  });

  it('shows the key store example exactly as the file the test runs', async () => {
    const doc = await readFile(new URL('../../docs/sdk.md', import.meta.url), 'utf8');
    const example = await readFile(new URL('../../docs/examples/key-store.ts', import.meta.url), 'utf8');
    expect(doc).toContain(example.trim());
  });

  it('runs the key store example: an old unencrypted store is migrated, then opens only with its passphrase', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'bc-doc-store-'));
    try {
      const file = path.join(dir, 'keys.json');
      await writeFile(file, JSON.stringify({ version: 1, entries: { k: '"v"' } }));
      const store = await openKeyStore(file, 'a long passphrase');
      expect(await store.get('k')).toBe('v');
      await store.close();
      expect(await readFile(file, 'utf8')).not.toContain('"v"');
      await expect(openKeyStore(file, 'another passphrase')).rejects.toMatchObject({ code: 'keystore_wrong_key' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
