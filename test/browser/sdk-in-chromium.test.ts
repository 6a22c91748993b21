import { readFile, readdir } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryKeyStore, convene, join, type ChannelClient } from '@backchannel/client-sdk';
import { launchChromium } from '../support/chromium.js';
import { startTestRelay, type TestRelay } from '../support/relay.js';
import { nodePlatform, observe, until, type Party } from '../support/sdk.js';

async function bundlePage(): Promise<string> {
  const out = await build({
    entryPoints: [fileURLToPath(new URL('./page-entry.ts', import.meta.url))],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    conditions: ['source'],
    write: false,
    logLevel: 'silent',
  });
  return out.outputFiles[0]!.text;
}

/** Every file of the browser profile, read now. */
async function profileFiles(dir: string): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) out.push(await readFile(path.join(entry.parentPath, entry.name)).catch(() => Buffer.alloc(0)));
  }
  return out;
}

/** The needles found in any file, as one-byte or two-byte strings (how V8 serialises them). */
function found(files: Buffer[], needles: string[]): string[] {
  return needles.filter((n) => files.some((f) => f.includes(Buffer.from(n, 'latin1')) || f.includes(Buffer.from(n, 'utf16le'))));
}

describe('the SDK in a real Chromium, with its IndexedDB key store', () => {
  let relay: TestRelay;
  let site: Server;
  let siteUrl: string;
  let browser: Awaited<ReturnType<typeof launchChromium>>;
  let page: Page;
  let host: ChannelClient;
  let nodeParty: Party;

  beforeAll(async () => {
    relay = await startTestRelay();
    const script = await bundlePage();
    // The page is served from another origin than the relay, as a web app would be.
    site = createServer((req, res) => {
      if (req.url === '/app.js') {
        res.writeHead(200, { 'content-type': 'text/javascript' });
        res.end(script);
      } else {
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end('<!doctype html><html><body><script type="module" src="/app.js"></script></body></html>');
      }
    });
    await new Promise<void>((r) => site.listen(0, '127.0.0.1', () => r()));
    siteUrl = `http://127.0.0.1:${(site.address() as AddressInfo).port}/`;
    browser = await launchChromium();
    page = await browser.context.newPage();
    await page.goto(siteUrl);
    await page.waitForSelector('body[data-ready="yes"]', { state: 'attached' });
  });
  afterAll(async () => {
    await nodeParty?.client.close();
    await host?.close();
    await browser?.close();
    await new Promise<void>((r) => site.close(() => r()));
    await relay.close();
  });

  it('converses with a Node client through the relay, and resumes from IndexedDB after a reload', async () => {
    host = await convene({ relay: relay.url, store: new MemoryKeyStore(), platform: nodePlatform });
    const nodeStore = new MemoryKeyStore();
    nodeParty = observe(await join({ invite: await host.invite(), store: nodeStore, platform: nodePlatform }), nodeStore);
    const browserKey = await page.evaluate((link) => window.bc.join(link), await host.invite());

    // Each compares the other's fingerprint (read out of band) before approving.
    await nodeParty.client.approve(browserKey, { fingerprint: await page.evaluate(() => window.bc.fingerprint()) });
    const nodeFingerprint = await nodeParty.client.myFingerprint();
    await page.evaluate(([k, f]) => window.bc.approve(k!, f!), [nodeParty.client.memberKey, nodeFingerprint]);
    await until(async () => (await page.evaluate(() => window.bc.parties())) === 2);
    await until(async () => (await nodeParty.client.refreshGroup()).members.filter((m) => m.role === 'party').length === 2);

    await page.evaluate(() => window.bc.send('hello from Chromium'));
    await nodeParty.client.sendText('hello from Node');
    await until(() => nodeParty.messages.length === 1);
    expect(nodeParty.messages[0]!.content).toEqual({ kind: 'text', text: 'hello from Chromium' });
    expect(nodeParty.messages[0]!.from).toBe(browserKey);
    await until(async () => (await page.evaluate(() => window.bc.received())).length === 1);
    expect(await page.evaluate(() => window.bc.received())).toEqual(['hello from Node']);
    expect(await page.evaluate(() => window.bc.storedKeys())).toContain(`backchannel/channel/${host.id}`);

    // The page goes away; a message is sent meanwhile; a new page gets its keys, sessions and
    // resume point back from IndexedDB alone.
    await page.goto('about:blank');
    await nodeParty.client.sendText('sent while the page reloads');
    await page.goto(siteUrl);
    await page.waitForSelector('body[data-ready="yes"]', { state: 'attached' });
    await page.evaluate((channel) => window.bc.reopen(channel), host.id);
    await until(async () => (await page.evaluate(() => window.bc.received())).includes('sent while the page reloads'));
    await page.evaluate(() => window.bc.send('back after reload'));
    await until(() => nodeParty.messages.length === 2);
    expect(nodeParty.messages[1]!.content).toEqual({ kind: 'text', text: 'back after reload' });
    expect(await page.evaluate(() => window.bc.alarms())).toEqual([]);
    expect(nodeParty.alarms).toEqual([]);

    // At rest, IndexedDB holds none of the store's names, keys, ratchet state or drafts. The
    // control (the same kind of JSON text an unencrypted store kept) shows the search finds
    // what is there.
    const draftText = 'DRAFT-MARKER-unpublished-7731 the terms are acceptable';
    await page.evaluate((t) => window.bc.draft(t), draftText);
    const secrets = (await page.evaluate(() => window.bc.storedStrings())).filter((s) => s.length >= 16);
    expect(secrets).toContain(draftText);
    expect(secrets.length).toBeGreaterThan(10);
    await page.evaluate(() => window.bc.writePlaintext('backchannel-control', { control: 'CONTROL-MARKER-plaintext-5518' }));
    await until(async () => found(await profileFiles(browser.profile), ['CONTROL-MARKER-plaintext-5518']).length === 1);
    expect(found(await profileFiles(browser.profile), secrets)).toEqual([]);
  });

  it('refuses a wrong key with keystore_wrong_key and leaves the stored record as it was', async () => {
    expect(await page.evaluate(() => window.bc.wrongKey('backchannel-wrong-key'))).toEqual({ code: 'keystore_wrong_key', unchanged: true, stillOpens: true });
  });

  it('migrates an unencrypted store of an older SDK, which open refuses until then', async () => {
    await page.evaluate(() => window.bc.writePlaintext('backchannel-old', { 'backchannel/channel/x': 'OLD-SECRET' }));
    expect(await page.evaluate(() => window.bc.migrate('backchannel-old', 'backchannel/channel/x'))).toEqual({
      refused: 'keystore_plaintext',
      migrated: true,
      value: 'OLD-SECRET',
      again: false,
    });
  });
});
