// The browser side of the Chromium test: the SDK bundle with an encrypted IndexedDB key store,
// driven from the test through `window.bc`.
import { BackchannelError, IndexedDbKeyStore, generateStoreKey, join, reopen, type ChannelClient, type ChannelMessage } from '@backchannel/client-sdk';

interface Driver {
  join(link: string): Promise<string>;
  reopen(channel: string): Promise<string>;
  approve(member: string, fingerprint: string): Promise<void>;
  fingerprint(): Promise<string>;
  parties(): Promise<number>;
  send(text: string): Promise<number>;
  draft(text: string): Promise<string>;
  received(): string[];
  alarms(): string[];
  storedKeys(): Promise<string[]>;
  storedStrings(): Promise<string[]>;
  writePlaintext(name: string, plaintext: Record<string, string>): Promise<void>;
  wrongKey(name: string): Promise<{ code: string; unchanged: boolean; stillOpens: boolean }>;
  migrate(name: string, entry: string): Promise<{ refused: string; migrated: boolean; value: unknown; again: boolean }>;
}

declare global {
  interface Window {
    bc: Driver;
  }
}

const STORE = 'backchannel-test';
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

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

/** A database of the application's own with one object store `s` (version 1). */
async function appDb(name: string): Promise<IDBDatabase> {
  const req = indexedDB.open(name, 1);
  req.onupgradeneeded = () => req.result.createObjectStore(name === `${STORE}-key` ? 's' : 'kv');
  return request(req);
}

/**
 * The application keeps its non-extractable key in a database of its own: script can use it
 * after a reload but never read its bytes.
 */
async function storeKey(): Promise<CryptoKey> {
  const db = await appDb(`${STORE}-key`);
  let key: unknown = await request(db.transaction('s').objectStore('s').get('key'));
  if (!(key instanceof CryptoKey)) {
    key = await generateStoreKey();
    await request(db.transaction('s', 'readwrite').objectStore('s').put(key, 'key'));
  }
  db.close();
  return key as CryptoKey;
}

async function openStore(): Promise<IndexedDbKeyStore> {
  store ??= await IndexedDbKeyStore.open(STORE, await storeKey());
  return store;
}

function strings(value: unknown, out: string[]): string[] {
  if (typeof value === 'string') out.push(value);
  else if (Array.isArray(value)) for (const v of value) strings(v, out);
  else if (typeof value === 'object' && value !== null) for (const [k, v] of Object.entries(value)) strings(v, strings(k, out));
  return out;
}

async function sealedRecord(name: string): Promise<unknown> {
  const db = await request(indexedDB.open(name));
  const record: unknown = await request(db.transaction('sealed').objectStore('sealed').get('entries'));
  db.close();
  return record;
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    return BackchannelError.is(err) ? err.code : String(err);
  }
}

window.bc = {
  join: async (link) => watch(await join({ invite: link, store: await openStore() })),
  reopen: async (channel) => watch(await reopen({ channel, store: await openStore() })),
  approve: (member, fingerprint) => client!.approve(member, { fingerprint }),
  fingerprint: () => client!.myFingerprint(),
  parties: async () => (await client!.refreshGroup()).members.filter((m) => m.role === 'party').length,
  send: async (text) => (await client!.sendText(text)).seq,
  draft: (text) => client!.draft({ kind: 'communique', text }),
  received: () => received,
  alarms: () => alarms,
  storedKeys: async () => (await openStore()).list(),
  storedStrings: async () => {
    const s = await openStore();
    const out: string[] = [];
    for (const name of await s.list()) strings(await s.get(name), out).push(name);
    return out;
  },
  writePlaintext: async (name, plaintext) => {
    // What an SDK before encryption left behind: JSON text per entry, in clear.
    const db = await appDb(name);
    const tx = db.transaction('kv', 'readwrite');
    for (const [k, v] of Object.entries(plaintext)) tx.objectStore('kv').put(JSON.stringify(v), k);
    await new Promise((r) => (tx.oncomplete = r));
    db.close();
  },
  wrongKey: async (name) => {
    const right = await generateStoreKey();
    const s = await IndexedDbKeyStore.open(name, right);
    await s.put('a', { secret: 'x' });
    await s.close();
    const before = JSON.stringify(await sealedRecord(name), (_k, v: unknown) => (v instanceof Uint8Array ? [...v] : v));
    const code = await codeOf(IndexedDbKeyStore.open(name, await generateStoreKey()));
    const after = JSON.stringify(await sealedRecord(name), (_k, v: unknown) => (v instanceof Uint8Array ? [...v] : v));
    const again = await IndexedDbKeyStore.open(name, right);
    const stillOpens = JSON.stringify(await again.get('a')) === '{"secret":"x"}';
    await again.close();
    return { code, unchanged: before === after, stillOpens };
  },
  migrate: async (name, entry) => {
    const key = await generateStoreKey();
    const refused = await codeOf(IndexedDbKeyStore.open(name, key));
    const migrated = await IndexedDbKeyStore.migrate(name, key);
    const again = await IndexedDbKeyStore.migrate(name, key);
    const s = await IndexedDbKeyStore.open(name, key);
    const value = await s.get(entry);
    await s.close();
    return { refused, migrated, value, again };
  },
};
document.body.dataset.ready = 'yes';
