import { readFile } from 'node:fs/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { toBase64Url, utf8 } from '../protocol/index.js';
import { sodiumReady } from '../sodium.js';
import { openGroupMessage, sealGroupMessage, type GroupDelivery } from './group-message.js';
import { recordReceipt, upgradeGroupState, type GroupStateV1 } from './group-state.js';

/** Two members' states and deliveries as the SDK before state version 2 persisted them. */
interface V1Fixture {
  alice: GroupStateV1;
  bob: GroupStateV1;
  /** Opened by bob before the states were saved. */
  delivered: GroupDelivery[];
  /** Sealed by alice, not yet delivered to bob. */
  pending: GroupDelivery;
}

async function fixture(): Promise<V1Fixture> {
  return JSON.parse(await readFile(new URL('./fixtures/group-state-v1.json', import.meta.url), 'utf8')) as V1Fixture;
}

beforeAll(async () => {
  await sodiumReady();
});

describe('group state upgrade', () => {
  it('carries a version 1 state on: pending messages open, old ones are duplicates or replays', async () => {
    const f = await fixture();
    const bob = upgradeGroupState(f.bob);
    expect(bob.version).toBe(2);
    expect(upgradeGroupState(bob)).toBe(bob);

    const opened = await openGroupMessage(bob, f.pending);
    expect(opened.status).toBe('delivered');
    if (opened.status !== 'delivered') return;
    // The pending delivery's chain links to seq 2's value, remembered from version 1: no fork.
    expect(opened.alarms).toEqual([]);
    expect(new TextDecoder().decode(opened.message.plaintext)).toBe('v1 message 3');

    for (const d of f.delivered) expect((await openGroupMessage(opened.state, d)).status).toBe('duplicate');
    const replay = await openGroupMessage(opened.state, { ...f.delivered[0]!, seq: 9, chain: toBase64Url(new Uint8Array(32)) });
    expect(replay.status === 'rejected' && replay.error.code).toBe('integrity_replay');
  });

  it('keeps the remembered receipts: a contradicting chain value is still a fork', async () => {
    const f = await fixture();
    const alice = upgradeGroupState(f.alice);
    for (const seq of [1, 2, 3]) {
      expect(recordReceipt(alice, seq, f.alice.receipts[String(seq)]!).fork).toBe(false);
      expect(recordReceipt(alice, seq, toBase64Url(new Uint8Array(32).fill(seq))).fork).toBe(true);
    }
    expect(alice.lastReceipt).toEqual(f.alice.lastReceipt);
  });

  it('lets an upgraded sender keep talking to a member', async () => {
    const f = await fixture();
    const alice = upgradeGroupState(f.alice);
    const bob = upgradeGroupState(f.bob);
    const sealed = await sealGroupMessage(alice, { recipients: [bob.self.dhPublic], plaintext: utf8('after upgrade'), clientMsgId: 'm4' });
    const opened = await openGroupMessage(bob, {
      from: alice.self.dhPublic,
      header: sealed.message.headers[bob.self.dhPublic]!,
      body: sealed.message.body,
      commitment: sealed.message.commitment,
      seq: 4,
      chain: toBase64Url(new Uint8Array(32).fill(4)),
    });
    // Message 3 never reached bob: a gap, as it would have been before the upgrade.
    expect(opened.status === 'delivered' && opened.alarms.map((a) => a.code)).toEqual(['integrity_gap']);
  });
});
