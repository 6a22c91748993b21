import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const ROOT = new URL('../../', import.meta.url).pathname;
const DCLINT = path.join(ROOT, 'node_modules/.bin/dclint');

async function lint(file: string): Promise<{ code: number; out: string }> {
  return promisify(execFile)(DCLINT, [file], { cwd: ROOT }).then(
    (r) => ({ code: 0, out: r.stdout + r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: e.stdout + e.stderr }),
  );
}

describe('docker-compose.yml (no Docker engine here: a compose-schema linter checks it)', () => {
  it('passes dclint with no errors or warnings', async () => {
    const { code, out } = await lint('docker-compose.yml');
    expect(out).not.toMatch(/error|warning/);
    expect(code).toBe(0);
  });

  it('has the relay built from the Dockerfile and PostgreSQL 15 with a volume and health checks', async () => {
    const text = await readFile(path.join(ROOT, 'docker-compose.yml'), 'utf8');
    expect(text).toMatch(/image: postgres:15\n/);
    expect(text).toMatch(/dockerfile: Dockerfile/);
    expect(text).toMatch(/pg_isready/);
    // No default passwords, and the relay is not the superuser.
    expect(text).toMatch(/\$\{POSTGRES_PASSWORD:\?[^}]*\}/);
    expect(text).not.toMatch(/:-change-me/);
    expect(text).toMatch(/DATABASE_URL: postgres:\/\/backchannel_relay:/);
    expect(text).toMatch(/read_only: true/);
    expect(text).toMatch(/mem_limit:/);
    expect(text).toMatch(/\/readyz/);
    expect(text).toMatch(/condition: service_healthy/);
    expect(text).toMatch(/postgres-data:\/var\/lib\/postgresql\/data/);
    const dockerfile = await readFile(path.join(ROOT, 'Dockerfile'), 'utf8');
    expect(dockerfile).toMatch(/^USER backchannel$/m);
    expect(dockerfile).toMatch(/^HEALTHCHECK /m);
    expect(dockerfile).toMatch(/^VOLUME \["\/var\/lib\/backchannel"\]$/m);
    expect(dockerfile).toMatch(/^FROM node:22-/m);
  });

  it('the linter does reject a broken file (so the check above can fail)', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'bc-compose-'));
    try {
      const broken = path.join(dir, 'docker-compose.yml');
      await writeFile(broken, 'services:\n  relay:\n    image: 5\n    depends_on: yes\n    ports: 8787\n');
      expect((await lint(broken)).code).not.toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
