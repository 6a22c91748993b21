import { describe, expect, it } from 'vitest';
import { MemoryKeyStore } from '../keystore/memory-key-store.js';
import { loadRecord, recordKey } from './channel-record.js';

describe('channel record', () => {
  it('refuses a record saved before the group log with channel_legacy, and loads nothing else from it', async () => {
    const channel = 'B'.repeat(22);
    const saved = {
      v: 1,
      relay: 'ws://relay.invalid',
      channel,
      role: 'party',
      group: { version: 1, channel },
      trust: { trusted: {}, flagged: {}, snapshotTaken: true, anchor: [] },
      verified: {},
      lastSeq: 2,
      outbox: {},
      purposeKey: null,
      charter: null,
    };
    const store = new MemoryKeyStore();
    await store.put(recordKey(channel), saved);
    await expect(loadRecord(store, channel)).rejects.toMatchObject({ code: 'channel_legacy' });
    expect(await loadRecord(store, 'A'.repeat(22))).toBeUndefined();
  });
});
