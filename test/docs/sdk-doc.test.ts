import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
});
