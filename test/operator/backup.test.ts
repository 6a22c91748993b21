import { chmod, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { toBase64Url, type RelayFrameOf } from '@backchannel/client-sdk/protocol';
import { openChannel, reconnected, type RawMember } from '../support/members.js';
import { freePort } from '../support/ports.js';
import { createTestDatabase, startTestRelay } from '../support/relay.js';
import { until } from '../support/sdk.js';
import { cli, tempDir } from './support/cli-process.js';

const wellKnown = async (url: string): Promise<{ authKey: string; recordKeys: string[] }> => (await (await fetch(`${url}/.well-known/backchannel.json`)).json()) as { authKey: string; recordKeys: string[] };

describe('backchannel backup / restore', () => {
  let parent = '';
  afterAll(async () => {
    if (parent !== '') await rm(parent, { recursive: true, force: true });
  });

  it('backs up the embedded database (0600) while the relay runs, restores into an empty external database (exit 0), and a client resumes there', async () => {
    parent = await tempDir('bc-backup-');
    await chmod(parent, 0o755);
    const embeddedEnv = { BACKCHANNEL_DATA_DIR: path.join(parent, 'data'), BACKCHANNEL_EMBEDDED_PG_PORT: String(await freePort()) };
    const source = await startTestRelay(embeddedEnv, {}, { embedded: true });
    const ch = await openChannel(source.url, 2);
    const [alice, bob] = ch.parties as [RawMember, RawMember];
    for (let i = 0; i < 5; i++) {
      await alice.conn.request({ type: 'send', channel: ch.channel, clientMsgId: `m${i}`, headers: { [bob.key]: 'AA' }, body: toBase64Url(new Uint8Array([i])), commitment: toBase64Url(new Uint8Array(32)) });
    }
    const keysBefore = await wellKnown(source.url);
    const file = path.join(parent, 'relay.backup');
    const backup = await cli(['backup', file], embeddedEnv, parent); // joins the running relay's database
    expect(backup.code, backup.stderr).toBe(0);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    for (const m of [ch.host, alice, bob]) await m.conn.close();
    await source.close();

    const databaseUrl = await createTestDatabase();
    const restore = await cli(['restore', file], { DATABASE_URL: databaseUrl }, parent);
    expect(restore.code, restore.stderr).toBe(0);
    expect(restore.stdout).toMatch(/^restored \d+ rows/);

    const target = await startTestRelay({ DATABASE_URL: databaseUrl });
    try {
      expect(await wellKnown(target.url)).toEqual(keysBefore); // same relay keys: clients and records still verify
      const bob2 = reconnected(target.url, bob);
      await bob2.conn.connect();
      const got: number[] = [];
      bob2.conn.subscribe(ch.channel, {
        after: () => got.at(-1) ?? 0,
        deliver: async (f: RelayFrameOf<'deliver'>) => void got.push(f.seq),
      });
      await until(() => got.length >= 5, 10_000);
      expect(got).toEqual([1, 2, 3, 4, 5]);
      // A new message continues the sequence.
      const alice2 = reconnected(target.url, alice);
      await alice2.conn.connect();
      const sent = await alice2.conn.request({ type: 'send', channel: ch.channel, clientMsgId: 'after-restore', headers: { [bob.key]: 'AA' }, body: 'AA', commitment: toBase64Url(new Uint8Array(32)) });
      expect(sent).toMatchObject({ seq: 6 });
      await alice2.conn.close();
      await bob2.conn.close();
    } finally {
      await target.close();
    }

    const again = await cli(['restore', file], { DATABASE_URL: databaseUrl }, parent);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already holds relay data/);
  });
});
