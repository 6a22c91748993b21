import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeInviteLink, type ChannelClient } from '@backchannel/client-sdk';
import { fromBase64Url } from '@backchannel/client-sdk/protocol';
import { startTestRelay, type TestRelay } from '../support/relay.js';
import { convenedChannel, until, type Party } from '../support/sdk.js';

describe('relay logs never hold secrets', () => {
  let relay: TestRelay;
  let host: ChannelClient;
  let parties: Party[];

  beforeAll(async () => {
    relay = await startTestRelay({ BACKCHANNEL_LOG_LEVEL: 'trace' });
  });
  afterAll(async () => {
    for (const p of parties ?? []) await p.client.close();
    await host?.close();
    await relay.close();
  });

  it('a full workflow at trace level: no plaintext, key, invite secret, proof, nonce or password in any log line', async () => {
    ({ host, parties } = await convenedChannel(relay.url, 2, { purpose: 'PURPOSE-MARKER-7731' }));
    const [alice, bob] = parties as [Party, Party];
    const link = await host.invite();
    const invite = decodeInviteLink(link);
    const sent = await alice.client.sendText('PLAINTEXT-MARKER-4410');
    await until(() => bob.messages.length === 1);
    const id = await alice.client.draft({ kind: 'communique', text: 'DRAFT-MARKER-9902' });
    await until(() => bob.client.drafts().length === 1);
    await alice.client.disclosure.propose(id);
    await alice.client.disclosure.veto(id);

    const secrets: string[] = ['PURPOSE-MARKER-7731', 'PLAINTEXT-MARKER-4410', 'DRAFT-MARKER-9902', sent.frankingKey, invite.secret, Buffer.from(fromBase64Url(invite.secret)!).toString('hex'), invite.purposeKey];
    for (const p of parties) {
      const saved = JSON.stringify(await p.store.get(`backchannel/channel/${host.id}`));
      secrets.push(...[...saved.matchAll(/"(?:dhSecret|signSecret|secretKey|rootKey|chainKey)":"([A-Za-z0-9_-]{40,})"/g)].map((m) => m[1]!));
    }
    const password = new URL(relay.databaseUrl).password;
    expect(password.length).toBeGreaterThan(0);
    secrets.push(password);
    expect(relay.logs.length).toBeGreaterThan(20); // trace level did log the workflow
    const all = relay.logs.join('\n');
    for (const s of secrets) expect(all.includes(s), `a log line holds ${s.slice(0, 12)}…`).toBe(false);
    expect(all).not.toMatch(/proof=|nonce=|[?&]key=/);
  });
});
