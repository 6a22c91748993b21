/**
 * Prekey bundles (issue 14, item 1): a bundle without a one-time prekey (stripped by the relay,
 * or the member ran out) still starts a session, but the SDK reports it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sodiumReady } from '@backchannel/client-sdk';
import { startHostileProxy, type HostileProxy } from '../support/hostile-proxy.js';
import { startTestRelay, type TestRelay } from '../support/relay.js';
import { convenedChannel, until, type Party } from '../support/sdk.js';

describe('a bundle without a one-time prekey', () => {
  let relay: TestRelay;
  let proxy: HostileProxy;
  let alice: Party;
  let bob: Party;
  let carol: Party;

  beforeAll(async () => {
    await sodiumReady();
    relay = await startTestRelay();
    proxy = await startHostileProxy(relay.url);
    const ch = await convenedChannel(proxy.url, 3);
    [alice, bob, carol] = ch.parties as [Party, Party, Party];
    await ch.host.close();
  });
  afterAll(async () => {
    for (const p of [alice, bob, carol]) await p.client.close();
    await proxy.close();
    await relay.close();
  });

  it('still starts the session, and the SDK raises one_time_prekey_missing naming the member', async () => {
    // The relay strips the one-time prekey from Bob's bundle only.
    proxy.tamper = {
      toClient: (frame) => (frame.type === 'prekeys.bundle' && frame.member === bob.client.memberKey ? [{ ...frame, oneTimePrekey: null }] : [frame]),
    };
    const sent = await alice.client.sendText('first words');
    await until(() => bob.messages.some((m) => m.seq === sent.seq) && carol.messages.some((m) => m.seq === sent.seq));
    expect(bob.alarms).toEqual([]);
    const reported = alice.alarms.filter((a) => a.code === 'one_time_prekey_missing');
    expect(reported.map((a) => a.member)).toEqual([bob.client.memberKey]);
  });
});
