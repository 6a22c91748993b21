import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { startEmbeddedPostgres } from '../../server/src/db/embedded.js';
import { freePort } from './ports.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Admin URL of the suite's PostgreSQL; each test file creates its own database in it. */
    pgAdminUrl: string;
  }
}

/**
 * One real PostgreSQL for the whole run (embedded, or the one named by TEST_DATABASE_URL, for
 * running the suite against an external server). Test files get a fresh database each.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const external = process.env.TEST_DATABASE_URL;
  if (external !== undefined && external !== '') {
    project.provide('pgAdminUrl', external);
    return async () => undefined;
  }
  const dir = await mkdtemp(path.join(tmpdir(), 'bc-test-pg-'));
  const pg = await startEmbeddedPostgres({ dataDir: dir, port: await freePort() });
  project.provide('pgAdminUrl', pg.adminUrl);
  return async () => {
    await pg.stop();
    await rm(dir, { recursive: true, force: true });
  };
}
