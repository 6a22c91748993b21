import { mkdir } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordHash, sodium, type FormalLog } from '@backchannel/client-sdk';
import { toBase64Url } from '@backchannel/client-sdk/protocol';
import { launchChromium } from '../support/chromium.js';
import { startTestRelay, type TestRelay } from '../support/relay.js';
import { convenedChannel, until, type Party } from '../support/sdk.js';

describe('the formal-record page, in a real Chromium', () => {
  let relay: TestRelay;
  let browser: Awaited<ReturnType<typeof launchChromium>>;
  let copies: Server;
  let channel: string;
  let fingerprint: string;
  const served = new Map<string, string>();

  beforeAll(async () => {
    relay = await startTestRelay();
    const { host, parties } = await convenedChannel(relay.url, 2);
    channel = host.id;
    fingerprint = host.fingerprint;
    const [alice, bob] = parties as [Party, Party];
    const said = await alice.client.sendText('We agree to meet in Geneva.');
    const id = await alice.client.draft({ kind: 'excerpt', items: [{ seq: said.seq, opened: { plaintext: said.plaintext, frankingKey: said.frankingKey } }] });
    await until(() => bob.client.drafts().some((d) => d.proposalId === id));
    await alice.client.disclosure.propose(id);
    await alice.client.disclosure.consent(id);
    await bob.client.disclosure.consent(id);
    await alice.client.disclosure.publish(id);
    // Each party's client verifies the publication and co-signs the log's head.
    await until(async () => ((await (await fetch(`${relay.url}/v1/formal/${channel}`)).json()) as FormalLog).checkpoints.length === 2);
    for (const p of parties) await p.client.close();
    await host.close();
    // Copies of the log served from elsewhere (as a leaked or mirrored file would be).
    copies = createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'access-control-allow-origin': '*' });
      res.end(served.get(req.url ?? '') ?? '{}');
    });
    await new Promise<void>((r) => copies.listen(0, '127.0.0.1', () => r()));
    browser = await launchChromium();
    await mkdir('test-results', { recursive: true });
  });
  afterAll(async () => {
    await browser.close();
    await new Promise<void>((r) => copies.close(() => r()));
    await relay.close();
  });

  /** Opens the page (the fingerprint goes in the URL fragment, which no server sees) and reads its verdict. */
  async function open(name: string, query = '', pinned: string | null = fingerprint): Promise<{ verdict: string; status: string }> {
    const page = await browser.context.newPage();
    await page.goto(`${relay.url}/formal/${channel}${query}${pinned === null ? '' : `#fingerprint=${pinned}`}`);
    await page.waitForSelector('body[data-verified]', { state: 'attached', timeout: 20_000 });
    const verdict = (await page.getAttribute('body', 'data-verified')) ?? '';
    const status = (await page.textContent('#status')) ?? '';
    await page.screenshot({ path: `test-results/formal-${name}.png`, fullPage: true });
    await page.close();
    return { verdict, status };
  }

  it('shows a valid log as valid against the pinned fingerprint, saying what it checked and what not', async () => {
    const { verdict, status } = await open('valid');
    expect(verdict).toBe('valid');
    expect(status).toContain(`Valid against fingerprint ${fingerprint}`);
    expect(status).toContain('Not checked');
  });

  it('verifies nothing without a fingerprint, and says so', async () => {
    const { verdict, status } = await open('unanchored', '', null);
    expect(verdict).toBe('unanchored');
    expect(status).toMatch(/^Not verified: add #fingerprint=/);
  });

  it('shows a copy with invented parties, or pinned to another fingerprint, as invalid, naming why', async () => {
    const log = (await (await fetch(`${relay.url}/v1/formal/${channel}`)).json()) as FormalLog;
    const invented = { ...log, records: [{ ...log.records[0]!, parties: [log.records[0]!.parties[0]!] }] };
    served.set('/invented.json', JSON.stringify(invented));
    const at = (name: string) => `?log=${encodeURIComponent(`http://127.0.0.1:${(copies.address() as AddressInfo).port}/${name}`)}`;
    const one = await open('invented-parties', at('invented.json'));
    expect(one.verdict).toBe('invalid');
    expect(one.status).toContain('the record lists parties other than the parties of its group state');
    const other = await open('other-fingerprint', '', `${fingerprint.startsWith('B') ? 'C' : 'B'}${fingerprint.slice(1)}`);
    expect(other.verdict).toBe('invalid');
    expect(other.status).toContain('does not start at the pinned fingerprint');
  });

  it('shows a tampered copy as invalid, naming why', async () => {
    const log = (await (await fetch(`${relay.url}/v1/formal/${channel}`)).json()) as FormalLog;
    const record = log.records[0]!;
    const item = record.items![0]!;
    if (!('opened' in item)) throw new Error('expected an opened item');
    const forged = new TextEncoder().encode('\u0001We refuse to meet anywhere.');
    const tampered = { ...log, records: [{ ...record, items: [{ ...item, opened: { ...item.opened, plaintext: Buffer.from(forged).toString('base64url') } }] }] };
    served.set('/tampered.json', JSON.stringify(tampered));
    const url = `http://127.0.0.1:${(copies.address() as AddressInfo).port}/tampered.json`;
    const { verdict, status } = await open('tampered', `?log=${encodeURIComponent(url)}`);
    expect(verdict).toBe('invalid');
    expect(status).toMatch(/Invalid: record 0: opening of seq \d+ does not match its commitment/);
  });

  it('shows a forked copy (another record the relay signed at an index the parties co-signed) as invalid, naming the fork', async () => {
    const log = (await (await fetch(`${relay.url}/v1/formal/${channel}`)).json()) as FormalLog;
    const { hash: _hash, sig: _sig, ...unsigned } = { ...log.records[0]!, publishedAt: log.records[0]!.publishedAt + 1 };
    const hash = recordHash(unsigned);
    const forked = { ...log, records: [{ ...unsigned, hash: toBase64Url(hash), sig: toBase64Url(sodium.crypto_sign_detached(hash, relay.context.keys.record.secretKey)) }] };
    served.set('/forked.json', JSON.stringify(forked));
    const url = `http://127.0.0.1:${(copies.address() as AddressInfo).port}/forked.json`;
    const { verdict, status } = await open('forked', `?log=${encodeURIComponent(url)}`);
    expect(verdict).toBe('invalid');
    expect(status).toMatch(/co-signed another record at 0: this log is forked from what the parties verified/);
  });
});
