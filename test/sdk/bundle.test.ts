import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

describe('the SDK browser bundle', () => {
  it('builds with esbuild into one ES module with no Node built-ins', async () => {
    const root = new URL('../../client-sdk/', import.meta.url);
    const { stdout } = await promisify(execFile)(process.execPath, [new URL('scripts/bundle.mjs', root).pathname], { timeout: 60_000 });
    expect(stdout).toMatch(/backchannel\.browser\.js \(\d+ KiB\)/);
    const bundle = await readFile(new URL('dist/backchannel.browser.js', root), 'utf8');
    expect(bundle).toMatch(/export\s*\{/);
    expect(bundle).not.toMatch(/from\s*"node:|require\("(fs|crypto|path)"\)/);
    expect(bundle).toContain('backchannel/record/v2'); // the offline verifier is in it
  });
});
