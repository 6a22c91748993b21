import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  forgeGroupMessage,
  join,
  openGroupMessage,
  reopen,
  utf8ToContent,
  type GroupState,
} from './properties-support.js';
import { FileKeyStore } from '@backchannel/client-sdk/node';
import { toBase64Url } from '@backchannel/client-sdk/protocol';
import { startHostileProxy, type HostileProxy } from '../support/hostile-proxy.js';
import { startTestRelay, type TestRelay } from '../support/relay.js';
import { convenedChannel, nodePlatform, observe, until, type Party } from '../support/sdk.js';

const groupOf = async (p: Party): Promise<GroupState> => ((await p.store.get(`backchannel/channel/${p.client.id}`)) as { group: GroupState }).group;
const text = (plaintext: Uint8Array): string => new TextDecoder().decode(plaintext.subarray(1));

describe('security properties, shown through the SDK against a real relay', () => {
  let relay: TestRelay;
  let proxy: HostileProxy;
  const closers: Party[] = [];

  beforeAll(async () => {
    relay = await startTestRelay();
    proxy = await startHostileProxy(relay.url);
  });
  afterAll(async () => {
    for (const p of closers) await p.client.close();
    await proxy.close();
    await relay.close();
  });

  it('deniability: a recipient, from its own state alone, makes a message its client accepts as the sender\'s', async () => {
    const { host, parties } = await convenedChannel(relay.url, 2);
    closers.push(...parties);
    await host.close();
    const [alice, bob] = parties as [Party, Party];
    await alice.client.sendText('a real message');
    await until(() => bob.messages.length === 1);
    const state = await groupOf(bob);
    const { epoch, stateHash } = bob.client.group();
    const forged = await forgeGroupMessage(state, { sender: alice.client.memberKey, plaintext: utf8ToContent('words Alice never wrote'), clientMsgId: 'forged', group: { epoch, stateHash } });
    const opened = await openGroupMessage(state, {
      from: alice.client.memberKey,
      header: forged.headers[bob.client.memberKey]!,
      body: forged.body,
      commitment: forged.commitment,
      seq: bob.messages[0]!.seq + 1,
      chain: toBase64Url(new Uint8Array(32).fill(9)),
    });
    expect(opened.status).toBe('delivered');
    if (opened.status === 'delivered') {
      expect(opened.message.from).toBe(alice.client.memberKey);
      expect(text(opened.message.plaintext)).toBe('words Alice never wrote');
    }
  });

  it('forward secrecy: state captured after a message was read does not decrypt it', async () => {
    const { host, parties } = await convenedChannel(proxy.url, 2);
    closers.push(...parties);
    await host.close();
    const [alice, bob] = parties as [Party, Party];
    const before = proxy.sent.length;
    const sent = await alice.client.sendText('read, then keys stolen');
    await until(() => bob.messages.length === 1);
    const frame = proxy.sent.slice(before).map((s) => s.frame).find((f) => f.type === 'send')!;
    if (frame.type !== 'send') throw new Error('no send frame');
    const stolen = await groupOf(bob); // everything Bob's device holds after reading
    const attempt = await openGroupMessage(stolen, {
      from: alice.client.memberKey,
      header: frame.headers[bob.client.memberKey]!,
      body: frame.body,
      commitment: frame.commitment,
      seq: sent.seq + 1000,
      chain: toBase64Url(new Uint8Array(32)),
    });
    expect(attempt.status).toBe('rejected');
  });

  it('a removed member cannot decrypt anything sent after its removal, even with the relay\'s help', async () => {
    const { host, parties } = await convenedChannel(proxy.url, 3);
    closers.push(...parties);
    await host.close();
    const [alice, bob, carol] = parties as [Party, Party, Party];
    const carolState = await groupOf(carol);
    await alice.client.remove(carol.client.memberKey);
    await bob.client.remove(carol.client.memberKey);
    await until(async () => !(await alice.client.refreshGroup()).members.some((m) => m.key === carol.client.memberKey));
    const before = proxy.sent.length;
    await alice.client.sendText('after the removal');
    const frame = proxy.sent.slice(before).map((s) => s.frame).find((f) => f.type === 'send');
    if (frame?.type !== 'send') throw new Error('no send frame');
    expect(Object.keys(frame.headers)).not.toContain(carol.client.memberKey);
    // The relay hands Carol everything it has: every header and the body.
    for (const header of Object.values(frame.headers)) {
      const attempt = await openGroupMessage(carolState, { from: alice.client.memberKey, header, body: frame.body, commitment: frame.commitment, seq: 10_000, chain: toBase64Url(new Uint8Array(32)) });
      expect(attempt.status).toBe('rejected');
    }
  });

  it('safety numbers match on both sides; a relay cannot change a verified member\'s keys, since they live in the signed log', async () => {
    const { host, parties } = await convenedChannel(proxy.url, 3);
    closers.push(...parties);
    await host.close();
    const [alice, bob] = parties as [Party, Party];
    const number = await alice.client.safetyNumber(bob.client.memberKey);
    expect(number).toMatch(/^(\d{5} ){11}\d{5}$/);
    expect(await bob.client.safetyNumber(alice.client.memberKey)).toBe(number);
    await alice.client.markVerified(bob.client.memberKey);
    expect(alice.client.group().members.find((m) => m.key === bob.client.memberKey)?.verified).toBe(true);
    // The relay pushes Alice an entry that "re-adds" Bob under a sign key of its own, signed by nobody.
    const { epoch, stateHash } = alice.client.group();
    const bobSeat = { key: bob.client.memberKey, signKey: toBase64Url(new Uint8Array(32).fill(7)), role: 'party' as const, invite: { key: toBase64Url(new Uint8Array(32).fill(1)), role: 'party' as const, expiresAt: Date.now(), sig: toBase64Url(new Uint8Array(64)) }, proof: toBase64Url(new Uint8Array(64)) };
    proxy.tamper = {
      toClient: (frame, link) =>
        frame.type === 'group' && link.member === alice.client.memberKey
          ? [{ ...frame, head: epoch + 1, entries: [{ epoch: epoch + 1, prev: stateHash, change: { kind: 'add', member: bobSeat }, sigs: [] }] }]
          : [frame],
    };
    await alice.client.refreshGroup();
    proxy.tamper = {};
    expect(alice.alarms.some((a) => a.code === 'integrity_group')).toBe(true);
    expect(alice.client.group().epoch).toBe(epoch);
    expect(alice.client.group().members.find((m) => m.key === bob.client.memberKey)?.verified).toBe(true);
  });

  it('a Node client on the encrypted file key store survives a restart, resumes, delivers nothing twice, and its file holds no secret in clear', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'bc-filestore-'));
    try {
      const { host, parties } = await convenedChannel(relay.url, 2);
      closers.push(...parties);
      const file = path.join(dir, 'bob.json');
      const storeKey = { key: new Uint8Array(randomBytes(32)) };
      let store = await FileKeyStore.open(file, storeKey);
      let bob = observe(await join({ invite: await host.invite(), store, platform: nodePlatform }), store);
      const [alice, carol] = parties as [Party, Party];
      const fingerprint = await bob.client.myFingerprint();
      await alice.client.approve(bob.client.memberKey, { fingerprint });
      await carol.client.approve(bob.client.memberKey, { fingerprint });
      await bob.client.whenActive();
      await until(async () => (await alice.client.refreshGroup()).members.some((m) => m.key === bob.client.memberKey));
      await alice.client.sendText('one');
      await until(() => bob.messages.length === 1);
      const channel = bob.client.id;
      await bob.client.close();
      await store.close();

      await alice.client.sendText('two');
      await alice.client.sendText('three');
      store = await FileKeyStore.open(file, storeKey);
      bob = observe(await reopen({ channel, store, platform: nodePlatform }), store);
      closers.push(bob);
      await until(() => bob.messages.length === 2);
      expect(bob.messages.map((m) => m.content)).toEqual([{ kind: 'text', text: 'two' }, { kind: 'text', text: 'three' }]);
      await bob.client.sendText('back');
      await until(() => alice.messages.length === 1);
      expect(alice.messages[0]!.content).toEqual({ kind: 'text', text: 'back' });
      expect(bob.alarms).toEqual([]);

      // At rest the file holds none of what the store holds: keys, ratchet state, names, drafts.
      const draftText = 'DRAFT-MARKER-unpublished-2290 we accept the terms';
      await bob.client.draft({ kind: 'communique', text: draftText });
      const held: string[] = [];
      const collect = (v: unknown): void => {
        if (typeof v === 'string') held.push(v);
        else if (typeof v === 'object' && v !== null) for (const [k, x] of Object.entries(v)) (held.push(k), collect(x));
      };
      for (const name of await store.list()) (held.push(name), collect(await store.get(name)));
      const secrets = held.filter((h) => h.length >= 16);
      expect(secrets).toContain(draftText);
      expect(secrets.length).toBeGreaterThan(10);
      const raw = await readFile(file, 'utf8');
      expect(secrets.filter((h) => raw.includes(h))).toEqual([]);
      await host.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
