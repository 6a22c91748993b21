import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { openGroupMessage, type GroupDelivery } from '../crypto/group-message.js';
import { upgradeGroupState, type GroupStateV1 } from '../crypto/group-state.js';
import { MemoryKeyStore } from '../keystore/memory-key-store.js';
import { loadRecord, recordKey, type ChannelRecord } from './channel-record.js';

describe('channel record', () => {
  it('upgrades the group state of a record saved by an older SDK, so the channel resumes', async () => {
    const f = JSON.parse(await readFile(new URL('../crypto/fixtures/group-state-v1.json', import.meta.url), 'utf8')) as {
      bob: GroupStateV1;
      pending: GroupDelivery;
    };
    const saved: Omit<ChannelRecord, 'group'> & { group: GroupStateV1 } = {
      v: 1,
      relay: 'ws://relay.invalid',
      channel: f.bob.channel,
      role: 'party',
      group: f.bob,
      trust: { trusted: {}, flagged: {}, snapshotTaken: true, anchor: [] },
      verified: {},
      lastSeq: 2,
      outbox: {},
      purposeKey: null,
      charter: null,
    };
    const store = new MemoryKeyStore();
    await store.put(recordKey(f.bob.channel), saved);
    const record = await loadRecord(store, f.bob.channel);
    expect(record).toEqual({ ...saved, group: upgradeGroupState(f.bob) });
    expect(record?.group.version).toBe(2);
    expect((await openGroupMessage(record!.group, f.pending)).status).toBe('delivered');
  });
});
