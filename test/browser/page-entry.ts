// The browser side of the Chromium test: the SDK bundle with an IndexedDB key store, driven
// from the test through `window.bc`.
import { IndexedDbKeyStore, join, reopen, type ChannelClient, type ChannelMessage } from '@backchannel/client-sdk';

interface Driver {
  join(link: string): Promise<string>;
  reopen(channel: string): Promise<string>;
  approve(member: string, fingerprint: string): Promise<void>;
  fingerprint(): Promise<string>;
  parties(): Promise<number>;
  send(text: string): Promise<number>;
  received(): string[];
  alarms(): string[];
  storedKeys(): Promise<string[]>;
}

declare global {
  interface Window {
    bc: Driver;
  }
}

let client: ChannelClient | undefined;
let store: IndexedDbKeyStore | undefined;
const received: string[] = [];
const alarms: string[] = [];

function watch(c: ChannelClient): string {
  client = c;
  c.on('message', (m: ChannelMessage) => received.push(m.content.kind === 'text' ? m.content.text : '(bytes)'));
  c.on('alarm', (a) => alarms.push(a.code));
  return c.memberKey;
}

async function openStore(): Promise<IndexedDbKeyStore> {
  store ??= await IndexedDbKeyStore.open('backchannel-test');
  return store;
}

window.bc = {
  join: async (link) => watch(await join({ invite: link, store: await openStore() })),
  reopen: async (channel) => watch(await reopen({ channel, store: await openStore() })),
  approve: (member, fingerprint) => client!.approve(member, { fingerprint }),
  fingerprint: () => client!.myFingerprint(),
  parties: async () => (await client!.refreshGroup()).members.filter((m) => m.role === 'party').length,
  send: async (text) => (await client!.sendText(text)).seq,
  received: () => received,
  alarms: () => alarms,
  storedKeys: async () => (await openStore()).list(),
};
document.body.dataset.ready = 'yes';
