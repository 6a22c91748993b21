import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  RelayConnection,
  decodeInviteLink,
  newInviteSecret,
  signedPrekeyMessage,
  sodium,
  sodiumReady,
  type ChannelClient,
  type FetchLike,
  type WebSocketConstructor,
} from '@backchannel/client-sdk';
import { fromBase64Url, readAuthSubprotocol, toBase64Url } from '@backchannel/client-sdk/protocol';
import { createLogger } from '../../server/src/logger.js';
import { convene, createInvite, found, rawCharter, redeem } from '../../bench/src/raw-group.js';
import type { RawMember } from '../support/members.js';
import { startTestRelay, type TestRelay } from '../support/relay.js';
import { convenedChannel, until, type Party } from '../support/sdk.js';

/** Every form a secret could take in a log line. */
function forms(bytes: Uint8Array): string[] {
  const b = Buffer.from(bytes);
  return [toBase64Url(bytes), b.toString('hex'), b.toString('base64')];
}

/** Auth material a connection used: the challenge nonces it fetched, the proofs it sent. */
interface Captured {
  nonces: string[];
  proofs: string[];
}

/** A raw member whose connection records its challenge nonces and auth proofs. */
async function capturingMember(relayUrl: string, captured: Captured): Promise<RawMember> {
  await sodiumReady();
  const box = sodium.crypto_box_keypair();
  const sig = sodium.crypto_sign_keypair();
  const dh = { publicKey: box.publicKey, secretKey: box.privateKey };
  const fetchLike: FetchLike = async (url, init) => {
    const res = await fetch(url, init);
    const body = (await res.json()) as { nonce?: string };
    if (typeof body.nonce === 'string') captured.nonces.push(body.nonce);
    return { ok: res.ok, status: res.status, json: async () => body };
  };
  class CapturingWebSocket extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      const proof = readAuthSubprotocol(typeof protocols === 'string' ? [protocols] : (protocols ?? []))?.proof;
      if (proof !== undefined) captured.proofs.push(proof);
      super(url, protocols);
    }
  }
  const conn = new RelayConnection({
    url: relayUrl,
    identity: dh,
    platform: { WebSocket: CapturingWebSocket as unknown as WebSocketConstructor, fetch: fetchLike },
    requestTimeoutMs: 5_000,
  });
  return { dh, sign: { publicKey: sig.publicKey, secretKey: sig.privateKey }, key: toBase64Url(dh.publicKey), conn };
}

/** Bytes that spell `marker` (so a log of the raw bytes, in any encoding, would show it). */
function markerBytes(marker: string, size: number): Uint8Array {
  const out = new Uint8Array(size);
  out.set(new TextEncoder().encode(marker.repeat(Math.ceil(size / marker.length)).slice(0, size)));
  return out;
}

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

  it('raw protocol at trace level: no auth nonce or proof, invite secret, secret key, prekey or marker bytes in any log line', async () => {
    const captured: Captured = { nonces: [], proofs: [] };
    const host = await capturingMember(relay.url, captured);
    const alice = await capturingMember(relay.url, captured);
    const bob = await capturingMember(relay.url, captured);
    const members = [host, alice, bob];
    try {
      await host.conn.connect();
      const { channel } = await convene(host, rawCharter(4, { purpose: toBase64Url(markerBytes('PURPOSE~RAW~', 48)) }));
      const inviteSecrets: Uint8Array[] = [];
      for (const who of [alice, bob]) {
        const secret = await createInvite(host, channel);
        inviteSecrets.push(secret);
        await redeem(who, channel, secret);
      }
      // A wrong invitation secret too: refusals are logged, and must not carry the secret.
      const wrong = newInviteSecret();
      await redeem(bob, channel, wrong).catch(() => undefined);
      await found(channel, [alice, bob]);

      const prekeySecrets: Uint8Array[] = [];
      const channelBytes = fromBase64Url(channel)!;
      for (const who of [alice, bob]) {
        const spk = sodium.crypto_box_keypair();
        const otk = sodium.crypto_box_keypair();
        prekeySecrets.push(spk.privateKey, otk.privateKey);
        const sig = sodium.crypto_sign_detached(signedPrekeyMessage(channelBytes, who.dh.publicKey, 1, spk.publicKey), who.sign.secretKey);
        await who.conn.request({
          type: 'prekeys.publish',
          channel,
          signedPrekey: { id: 1, key: toBase64Url(spk.publicKey), sig: toBase64Url(sig) },
          oneTimePrekeys: [{ id: 1, key: toBase64Url(otk.publicKey) }],
        });
      }
      await alice.conn.request({ type: 'prekeys.fetch', channel, member: bob.key });

      const MARKER = 'MARKER~opaque~5521';
      for (let i = 0; i < 5; i++) {
        await alice.conn.request({
          type: 'send',
          channel,
          clientMsgId: `raw-${i}`,
          headers: { [bob.key]: toBase64Url(markerBytes(`H-${MARKER}`, 96)) },
          body: toBase64Url(markerBytes(`B-${MARKER}`, 300)),
          commitment: toBase64Url(markerBytes(`C-${MARKER}`, 32)),
        });
      }
      let delivered = 0;
      bob.conn.subscribe(channel, { after: () => 0, deliver: async () => void delivered++ });
      await until(() => delivered === 5);
      // A malformed send carrying the marker: refused and logged as refused, without its content.
      await alice.conn.request({ type: 'send', channel, clientMsgId: 'bad', headers: {}, body: MARKER, commitment: 'x' } as never).catch(() => undefined);

      expect(captured.nonces.length).toBeGreaterThanOrEqual(3);
      expect(captured.proofs.length).toBeGreaterThanOrEqual(3);
      const secrets = [
        ...captured.nonces,
        ...captured.proofs,
        ...[...inviteSecrets, wrong].flatMap(forms),
        ...members.flatMap((m) => [...forms(m.dh.secretKey), ...forms(m.sign.secretKey), ...forms(m.sign.secretKey.subarray(0, 32))]),
        ...prekeySecrets.flatMap(forms),
        MARKER,
        ...[`H-${MARKER}`, `B-${MARKER}`, `C-${MARKER}`, 'PURPOSE~RAW~'].flatMap((m) => forms(new TextEncoder().encode(m)).slice(0, 2)),
        // base64url of the marker bytes as sent, at each of the three alignments
        ...[0, 1, 2].map((k) => toBase64Url(markerBytes(`B-${MARKER}`, 300)).slice(4 + k * 4, 40 + k * 4)),
      ];
      expect(relay.logs.some((l) => l.includes('"event":"frame"'))).toBe(true); // trace logged every frame
      const all = relay.logs.join('\n');
      for (const s of secrets) expect(all.includes(s), `a log line holds ${s.slice(0, 12)}…`).toBe(false);
    } finally {
      for (const m of members) await m.conn.close();
    }
  });
});

describe('log redaction', () => {
  const SERVER_SRC = fileURLToPath(new URL('../../server/src/', import.meta.url));

  /**
   * Fields the relay logs. Each is metadata (or, for `err`, an Error whose `detail` is
   * redacted: PostgreSQL puts a failing row's values there). A new field must be added here
   * after checking it cannot carry content, a key, a secret, a proof or a password.
   */
  const REVIEWED = new Set(['event', 'member', 'type', 'rid', 'code', 'buffered', 'port', 'embedded', 'reason', 'path', 'frame', 'err', 'line', 'channel', 'seq', 'count', 'ms', 'attempt', 'status', 'metricsPort', 'dataDir', 'setting', 'delayMs', 'variable', 'pid', 'beforeReady']);

  it('every field the relay logs is a reviewed metadata field', async () => {
    const files = (await readdir(SERVER_SRC, { recursive: true })).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'));
    const fields = new Set<string>();
    let calls = 0;
    for (const file of files) {
      const text = await readFile(path.join(SERVER_SRC, file), 'utf8');
      for (const m of text.matchAll(/\.(?:trace|debug|info|warn|error|fatal)\(\s*\{([^}]*)\}/g)) {
        calls++;
        for (const part of m[1]!.split(',')) {
          const key = part.split(':')[0]!.trim();
          if (key !== '') fields.add(key);
        }
      }
    }
    expect(calls).toBeGreaterThan(5);
    expect([...fields].filter((f) => !REVIEWED.has(f))).toEqual([]);
  });

  it('redacts secret-bearing fields at the top level, one level down and in errors', () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const logger = createLogger('trace', sink);
    const names = ['body', 'header', 'headers', 'secret', 'secretKey', 'proof', 'nonce', 'password', 'url', 'databaseUrl'];
    const value = (n: string) => `LEAK-${n}-4711`;
    const flat = Object.fromEntries(names.map((n) => [n, value(n)]));
    logger.info({ event: 'probe', ...flat });
    logger.info({ event: 'probe', frame: flat, conn: { ...flat } });
    const err = Object.assign(new Error('duplicate key'), { detail: `Failing row contains (${value('detail')}).` });
    logger.error({ event: 'probe', err });
    expect(lines.length).toBe(3);
    const all = lines.join('');
    for (const n of [...names, 'detail']) expect(all.includes(value(n)), `${n} not redacted`).toBe(false);
    expect(all).toContain('[redacted]');
    expect(all).toContain('duplicate key'); // the error itself still shows
  });
});
