import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { MemoryKeyStore, convene, join, verifyLog, type ChannelClient, type WebSocketConstructor } from '@backchannel/client-sdk';
import { loadConfig } from './config.js';
import { freePort } from './net/free-port.js';
import { startRelay } from './relay.js';

const platform = { WebSocket: WebSocket as unknown as WebSocketConstructor };
const say = (line: string): void => void process.stdout.write(`${line}\n`);

const waitForDraft = (client: ChannelClient): Promise<void> =>
  new Promise((resolve) => {
    const stop = client.on('message', (m) => {
      if (m.content.kind !== 'draft') return;
      stop();
      resolve();
    });
  });

/**
 * `npm run demo`: a whole back-channel in one process, against a real relay on the embedded
 * database — convene, invite, approve, talk, draft, consent, publish — printing each step and
 * the formal-record page's URL. It keeps serving the page until Ctrl-C (or exits with --exit).
 */
async function main(): Promise<number> {
  const exitAfter = process.argv.includes('--exit');
  const dataDir = await mkdtemp(path.join(tmpdir(), 'backchannel-demo-'));
  const relay = await startRelay(
    loadConfig({
      BACKCHANNEL_PORT: process.env.BACKCHANNEL_PORT ?? '0',
      BACKCHANNEL_DATA_DIR: dataDir,
      BACKCHANNEL_EMBEDDED_PG_PORT: String(await freePort()),
      BACKCHANNEL_LOG_LEVEL: 'warn',
    }),
  );
  say(`1. Relay running at ${relay.url} on an embedded PostgreSQL (${dataDir})`);
  try {
    const host = await convene({ relay: relay.url, store: new MemoryKeyStore(), platform, charter: { purpose: 'Harbour access talks', memberCap: 4 } });
    say(`2. The host convened channel ${host.id} (cap 4, retention 7 days, unanimous disclosure)`);
    const north = await join({ invite: await host.invite(), store: new MemoryKeyStore(), platform });
    const south = await join({ invite: await host.invite(), store: new MemoryKeyStore(), platform });
    say(`3. Two parties redeemed one-time invitations: North ${north.memberKey.slice(0, 10)}…, South ${south.memberKey.slice(0, 10)}…`);
    // Each compares the other's fingerprint, read out of band, before signing the founding.
    await north.approve(south.memberKey, { fingerprint: await south.myFingerprint() });
    await south.approve(north.memberKey, { fingerprint: await north.myFingerprint() });
    await Promise.all([north.whenActive(), south.whenActive()]);
    say(`4. They compared fingerprints and signed the channel's founding into its group log; the channel is open (fingerprint ${north.fingerprint}). Safety number: ${await north.safetyNumber(south.memberKey)}`);

    const heard = new Promise<void>((resolve) => south.on('message', (m) => m.content.kind === 'text' && resolve()));
    const opening = await north.sendText('We can open the harbour on weekdays.');
    await heard;
    const reply = await south.sendText('Agreed, if inspections stay joint.');
    const aside = await north.sendText('(Between us: our ministry wants weekends too.)');
    say(`5. They talk, end to end encrypted; the relay stored ciphertext as seq ${opening.seq}, ${reply.seq}, ${aside.seq}`);

    const draftSeen = waitForDraft(south);
    const communique = await north.draft({ kind: 'communique', text: 'The parties met and agreed on weekday harbour access.' });
    await draftSeen;
    await north.disclosure.propose(communique);
    await north.disclosure.consent(communique);
    await south.disclosure.consent(communique);
    await north.disclosure.publish(communique);
    say('6. A communiqué: drafted inside the channel, proposed (the relay saw only its hash), consented by both, published');

    const excerptSeen = waitForDraft(south);
    const excerpt = await north.draft({
      kind: 'excerpt',
      items: [
        { seq: opening.seq, opened: { plaintext: opening.plaintext, frankingKey: opening.frankingKey } },
        { seq: reply.seq, opened: { plaintext: reply.plaintext, frankingKey: reply.frankingKey } },
        { seq: aside.seq, withheld: true },
      ],
    });
    await excerptSeen;
    await north.disclosure.propose(excerpt);
    await north.disclosure.consent(excerpt);
    await south.disclosure.consent(excerpt);
    await north.disclosure.publish(excerpt);
    say(`7. An excerpt of seq ${opening.seq}–${aside.seq}: two messages opened, the aside withheld, published`);

    const { recordKeys } = (await (await fetch(`${relay.url}/.well-known/backchannel.json`)).json()) as { recordKeys: string[] };
    // An observer pins the channel's fingerprint (a party gives it out of band) and the relay's record keys.
    const result = await verifyLog(await (await fetch(`${relay.url}/v1/formal/${host.id}`)).json(), { fingerprint: host.fingerprint, relayKeys: recordKeys });
    if (!result.ok) throw new Error(`the formal record does not verify: ${result.reason}`);
    say(`8. The formal record verifies: ${result.records.length} records, consents by ${result.records[0]!.consentingKeys.length} parties, relay signature valid`);
    say(`   Formal-record page: ${relay.url}/formal/${host.id}#fingerprint=${host.fingerprint}`);
    say(`   Verify from the command line: npm run backchannel -- verify ${relay.url}/v1/formal/${host.id} --fingerprint ${host.fingerprint}`);
    await Promise.all([north.close(), south.close(), host.close()]);
    if (!exitAfter) {
      say('   Serving the page until Ctrl-C.');
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
    }
    return 0;
  } finally {
    await relay.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
