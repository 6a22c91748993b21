import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);

describe('npm run demo', () => {
  it('plays a whole back-channel on the embedded database and its formal record verifies', async () => {
    const { stdout } = await run('npm', ['run', '--silent', 'demo', '--', '--exit'], { cwd: new URL('..', import.meta.url).pathname, timeout: 90_000 });
    expect(stdout).toMatch(/^1\. Relay running at http:\/\/127\.0\.0\.1:\d+ on an embedded PostgreSQL/m);
    expect(stdout).toContain('4. They compared fingerprints and signed the channel\'s founding into its group log; the channel is open');
    expect(stdout).toContain('7. An excerpt of seq 1–3: two messages opened, the aside withheld, published');
    expect(stdout).toContain('8. The formal record verifies: 2 records, consents by 2 parties, relay signature valid');
    expect(stdout).toMatch(/Formal-record page: http:\/\/127\.0\.0\.1:\d+\/formal\/[A-Za-z0-9_-]{22}/);
  });
});
