import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { governanceTour } from '../../docs/examples/governance.js';
import { startTestRelay, type TestRelay } from '../support/relay.js';

describe('docs/governance.md', () => {
  let relay: TestRelay;
  beforeAll(async () => {
    relay = await startTestRelay();
  });
  afterAll(async () => {
    await relay.close();
  });

  it('shows the governance example exactly as the file the test runs', async () => {
    const doc = await readFile(new URL('../../docs/governance.md', import.meta.url), 'utf8');
    const example = await readFile(new URL('../../docs/examples/governance.ts', import.meta.url), 'utf8');
    expect(doc).toContain(example.trim());
  });

  it('runs the governance example: each rule holds as the page says', async () => {
    expect(await governanceTour(relay.url)).toEqual({
      carolPendingAfterOneApproval: true,
      carolActiveAfterAll: true,
      hostApproving: 'wrong_role',
      approvingUnchecked: 'not_verified',
      overCap: 'channel_full',
      carolGoneAfterRemoval: true,
      afterDissolve: 'closed',
    });
  });
});
