import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { disclosureTour } from '../../docs/examples/disclosure.js';
import { runCli } from '../../server/src/commands/run-cli.js';
import { startTestRelay, type TestRelay } from '../support/relay.js';

describe('docs/disclosure.md', () => {
  let relay: TestRelay;
  let dir: string;
  beforeAll(async () => {
    relay = await startTestRelay();
    dir = await mkdtemp(path.join(tmpdir(), 'bc-verify-'));
  });
  afterAll(async () => {
    await relay.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('shows the disclosure example exactly as the file the test runs', async () => {
    const doc = await readFile(new URL('../../docs/disclosure.md', import.meta.url), 'utf8');
    const example = await readFile(new URL('../../docs/examples/disclosure.ts', import.meta.url), 'utf8');
    expect(doc).toContain(example.trim());
  });

  let channel = '';
  let fingerprint = '';
  it('runs the example: every seat sees what the page says', async () => {
    const tour = await disclosureTour(relay.url);
    expect(tour.verified).toBe(true);
    expect(tour.publishedText).toBe('The parties have met and will meet again.');
    expect(tour.excerptOpened).toEqual(['We accept the second draft.']);
    expect(tour.excerptWithheld).toHaveLength(1);
    expect(tour.stagesSeenByHost).toEqual(['proposed', 'proposed', 'consented', 'published', 'proposed', 'proposed', 'consented', 'published']);
    expect(tour.observerFeedRecords).toBe(2);
    const rows = await relay.context.db.kysely.selectFrom('formal_records').select('channel_id').execute();
    channel = Buffer.from(rows[0]!.channel_id).toString('base64url');
    // What a party would read out to an observer: the genesis hash of the channel's group log.
    const genesis = await relay.context.db.kysely.selectFrom('group_log').select('state_hash').where('channel_id', '=', rows[0]!.channel_id).where('epoch', '=', 0).executeTakeFirstOrThrow();
    fingerprint = Buffer.from(genesis.state_hash).toString('base64url');
  });

  async function cli(args: string[]): Promise<{ code: number; out: string }> {
    let out = '';
    const code = await runCli(args, { stdout: (t) => (out += t), stderr: (t) => (out += t), env: {}, cwd: dir, stopRequested: new Promise(() => undefined) });
    return { code, out };
  }

  it('`backchannel verify` proves a log from a URL or a file, and names why a tampered one fails', async () => {
    const url = `${relay.url}/v1/formal/${channel}`;
    // Without the fingerprint nothing is anchored: verify refuses to say valid, and says why.
    const unanchored = await cli(['verify', url]);
    expect(unanchored.code).toBe(1);
    expect(unanchored.out).toMatch(/^not verified: no channel fingerprint pinned/);
    const fromUrl = await cli(['verify', url, '--fingerprint', fingerprint]);
    expect(fromUrl.code).toBe(0);
    expect(fromUrl.out).toContain(`valid: channel ${channel} (fingerprint ${fingerprint}), 2 record(s)`);
    expect(fromUrl.out).toContain('relay record keys not pinned');
    expect(fromUrl.out).toContain('"We accept the second draft."');
    expect(fromUrl.out).toMatch(/withheld seq \d+/);

    const log = (await (await fetch(url)).json()) as { records: { text?: string; hash: string }[] };
    await writeFile(path.join(dir, 'log.json'), JSON.stringify(log));
    const { recordKey } = (await (await fetch(`${relay.url}/.well-known/backchannel.json`)).json()) as { recordKey: string };
    expect((await cli(['verify', 'log.json', '--fingerprint', fingerprint, '--key', recordKey])).code).toBe(0);
    const elsewhere = await cli(['verify', 'log.json', '--fingerprint', `${fingerprint.startsWith('A') ? 'B' : 'A'}${fingerprint.slice(1)}`]);
    expect(elsewhere.out).toBe('invalid: record 0: the group log does not start at the pinned fingerprint: another channel, or a forged log\n');

    log.records[0]!.text = 'The parties never met.';
    await writeFile(path.join(dir, 'tampered.json'), JSON.stringify(log));
    const tampered = await cli(['verify', 'tampered.json', '--fingerprint', fingerprint, '--key', recordKey]);
    expect(tampered.code).toBe(1);
    expect(tampered.out).toBe('invalid: record 0: the content does not match its contentHash\n');

    await writeFile(path.join(dir, 'record.json'), JSON.stringify((await (await fetch(`${url}/1`)).json()) as unknown));
    // Two observers compare their copies: a prefix is consistent, another record at an index is a fork.
    await writeFile(path.join(dir, 'prefix.json'), JSON.stringify({ ...log, records: log.records.slice(0, 1) }));
    const prefix = await cli(['compare', 'log.json', 'prefix.json']);
    expect([prefix.code, prefix.out]).toEqual([0, 'consistent: 1 record(s) agree; the first copy extends the other by 1 record(s)\n']);
    const forkedHash = `${log.records[1]!.hash.startsWith('A') ? 'B' : 'A'}${log.records[1]!.hash.slice(1)}`;
    await writeFile(path.join(dir, 'forked.json'), JSON.stringify({ ...log, records: [log.records[0], { ...log.records[1], hash: forkedHash }] }));
    const forked = await cli(['compare', 'log.json', 'forked.json']);
    expect([forked.code, forked.out]).toEqual([1, `diverged at record 1: ${log.records[1]!.hash} in the first copy, ${forkedHash} in the second\n`]);

    // A record alone cannot prove who its parties were.
    const single = await cli(['verify', 'record.json', '--fingerprint', fingerprint, '--key', recordKey]);
    expect(single.code).toBe(1);
    expect(single.out).toMatch(/^not verified: this is not a formal log/);
    expect((await cli(['verify'])).code).toBe(2);

    // A base64url key may start with '-' (1 key in 64): it is still the value of --key, not an
    // option. A key with the same characters but a leading '-' is another key, so the log it
    // pins fails verification (exit 1), rather than the command line (exit 2).
    const real = recordKey.startsWith('-');
    const other = await cli(['verify', 'log.json', '--fingerprint', fingerprint, '--key', real ? recordKey : `-${recordKey.slice(1)}`]);
    expect(other.code, other.out).toBe(real ? 0 : 1);
    expect(other.out).not.toContain('ambiguous');
    expect((await cli(['verify', 'log.json', '--fingerprint', fingerprint, '--key'])).code).toBe(2);
  });
});
