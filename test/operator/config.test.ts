import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../../server/src/commands/run-cli.js';
import { ConfigError, ConfigSchema, loadConfig, unknownVariables } from '../../server/src/config.js';
import { OPERATOR_ERROR_CODES } from '../../server/src/operator-error.js';
import { freePort } from '../support/ports.js';
import { tempDir } from './support/cli-process.js';

function refusal(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).code).toBe('config_invalid');
    return (err as Error).message;
  }
  throw new Error(`accepted ${JSON.stringify(env)}`);
}

describe('configuration validation', () => {
  it('takes ports in decimal only: blanks, hex, exponents, signs and fractions are refused, naming the variable', () => {
    for (const value of [' ', '0x4A1B', '1e3', '+80', '80.5', '-1', '65536']) {
      expect(refusal({ BACKCHANNEL_PORT: value }), value).toMatch(/^invalid BACKCHANNEL_PORT: /);
    }
    expect(refusal({ BACKCHANNEL_METRICS_PORT: '0x10' })).toMatch(/^invalid BACKCHANNEL_METRICS_PORT: /);
    expect(loadConfig({ BACKCHANNEL_PORT: '8080' }).BACKCHANNEL_PORT).toBe(8080);
    expect(loadConfig({ BACKCHANNEL_PORT: '' }).BACKCHANNEL_PORT).toBe(8787); // empty: the default
  });

  it('takes origins only as a browser sends them', () => {
    for (const value of ['https://a.example/', 'a.example', 'https://a.example/path', 'ftp://a.example', 'https://a.example, *']) {
      expect(refusal({ BACKCHANNEL_ORIGINS: value }), value).toMatch(/^invalid BACKCHANNEL_ORIGINS: /);
    }
    expect(loadConfig({ BACKCHANNEL_ORIGINS: 'https://a.example, http://localhost:5173' }).BACKCHANNEL_ORIGINS).toEqual(['https://a.example', 'http://localhost:5173']);
  });

  it('names unknown BACKCHANNEL_* variables (misspellings) and reads secrets from *_FILE', async () => {
    expect(unknownVariables({ BACKCHANNEL_PROT: '1', BACKCHANNEL_PORT: '1', DATABASE_URL_FILE: 'x', PATH: '/bin' })).toEqual(['BACKCHANNEL_PROT']);
    const file = path.join(await tempDir(), 'url');
    await writeFile(file, 'postgres://relay:pw@db:5432/backchannel\n', { mode: 0o600 });
    expect(loadConfig({ DATABASE_URL_FILE: file }).DATABASE_URL).toBe('postgres://relay:pw@db:5432/backchannel');
    expect(refusal({ DATABASE_URL_FILE: file, DATABASE_URL: 'postgres://x' })).toMatch(/^invalid DATABASE_URL_FILE: /);
    expect(refusal({ DATABASE_URL_FILE: `${file}-missing` })).toMatch(/^invalid DATABASE_URL_FILE: cannot read .* \(ENOENT\)$/);
  });

  it('start: warns about unknown variables, and a database it cannot reach is named by its variable (never its password), as a log line', async () => {
    let stdout = '';
    let stderr = '';
    const code = await runCli(['start'], {
      stdout: (t) => void (stdout += t),
      stderr: (t) => void (stderr += t),
      env: { BACKCHANNEL_PROT: '9000', BACKCHANNEL_PORT: '0', DATABASE_URL: `postgres://relay:SECRETPW@127.0.0.1:${await freePort()}/x` },
      cwd: await tempDir(),
      stopRequested: new Promise<void>(() => undefined),
    });
    expect(code).toBe(1);
    const lines = stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.find((l) => l.event === 'config_unknown_variable')).toMatchObject({ level: 40, variable: 'BACKCHANNEL_PROT' });
    expect(lines.find((l) => l.event === 'start_failed')).toMatchObject({ level: 60, code: 'database_unreachable', msg: expect.stringMatching(/^DATABASE_URL: cannot use the database \(ECONNREFUSED/) as unknown });
    expect(stderr).toMatch(/^backchannel: DATABASE_URL: cannot use the database/);
    expect(stdout + stderr).not.toContain('SECRETPW');
  });
});

describe('docs/operator.md', () => {
  it('lists every operator error code and every configuration variable', async () => {
    const doc = await readFile(new URL('../../docs/operator.md', import.meta.url), 'utf8');
    for (const code of OPERATOR_ERROR_CODES) expect(doc, code).toContain(`| \`${code}\` |`);
    for (const name of Object.keys(ConfigSchema.shape)) expect(doc, name).toContain(`| \`${name}\` |`);
  });
});
