import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authProof, sodium, sodiumReady } from '@backchannel/client-sdk';
import { AUTH_PATHS, SUBPROTOCOL, authSubprotocol, fromBase64Url, toBase64Url, type Challenge } from '@backchannel/client-sdk/protocol';
import { createTestDatabase, startTestRelay, type TestRelay } from '../support/relay.js';
import { cli, tempDir } from './support/cli-process.js';

/** Answers `challenge` as a fresh member would, and opens the socket on `relayUrl`: the HTTP status of the upgrade. */
async function connectWith(relayUrl: string, challenge: Challenge): Promise<number> {
  const member = sodium.crypto_box_keypair();
  const relayKey = fromBase64Url(challenge.relayKey)!;
  const nonce = fromBase64Url(challenge.nonce)!;
  const proof = authProof(member.privateKey, relayKey, member.publicKey, relayKey, nonce);
  const url = new URL(AUTH_PATHS.socket, relayUrl.replace(/^http/, 'ws'));
  const credentials = authSubprotocol({ key: toBase64Url(member.publicKey), nonce: challenge.nonce, proof: toBase64Url(proof) });
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, [SUBPROTOCOL, credentials]);
    ws.once('open', () => {
      ws.close();
      resolve(101);
    });
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.once('error', reject);
  });
}

const challengeOf = async (relay: TestRelay): Promise<Challenge> => (await (await fetch(`${relay.url}${AUTH_PATHS.challenge}`)).json()) as Challenge;
const authKeyOf = async (relay: TestRelay): Promise<string> => ((await (await fetch(`${relay.url}/.well-known/backchannel.json`)).json()) as { authKey: string }).authKey;

describe('auth-key rotation behind a non-sticky load balancer', () => {
  let a: TestRelay;
  let b: TestRelay;
  let databaseUrl: string;
  beforeAll(async () => {
    await sodiumReady();
    databaseUrl = await createTestDatabase();
    // A re-reads the keys often; B would only re-read them in a minute, so it must learn on demand.
    a = await startTestRelay({ DATABASE_URL: databaseUrl, BACKCHANNEL_KEY_RELOAD_MS: '200' });
    b = await startTestRelay({ DATABASE_URL: databaseUrl, BACKCHANNEL_KEY_RELOAD_MS: '60000' });
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
  });

  it('a challenge from the node that has the new key opens a socket on one that has not; an old challenge still works during the grace period', async () => {
    const old = await challengeOf(b);
    expect(await connectWith(b.url, await challengeOf(a))).toBe(101);

    const cwd = await tempDir();
    const rotated = await cli(['keys', 'rotate', '--kind', 'auth', '--json'], { DATABASE_URL: databaseUrl }, cwd);
    expect(rotated.code, rotated.stderr).toBe(0);
    const { current } = JSON.parse(rotated.stdout) as { current: string };

    // A learns of it by itself (no restart) and issues challenges under the new key.
    await expect.poll(() => authKeyOf(a), { timeout: 5_000, interval: 100 }).toBe(current);
    const fresh = await challengeOf(a);
    expect(fresh.relayKey).toBe(current);
    expect(await authKeyOf(b)).not.toBe(current); // B has not re-read the keys yet
    // Challenge from A, socket on B: B meets an unknown key, re-reads the keys and accepts.
    expect(await connectWith(b.url, fresh)).toBe(101);
    expect(await authKeyOf(b)).toBe(current);
    // A challenge issued under the retired key before the rotation still opens a socket, anywhere.
    expect(await connectWith(a.url, old)).toBe(101);
  });

  it('a retired key past its grace period is refused', async () => {
    const c = await startTestRelay({ DATABASE_URL: databaseUrl, BACKCHANNEL_AUTH_KEY_GRACE_MS: '0', BACKCHANNEL_KEY_RELOAD_MS: '200' });
    try {
      const old = await challengeOf(c);
      const rotated = await cli(['keys', 'rotate', '--kind', 'auth', '--json'], { DATABASE_URL: databaseUrl }, await tempDir());
      expect(rotated.code).toBe(0);
      await expect.poll(() => authKeyOf(c), { timeout: 5_000, interval: 100 }).toBe((JSON.parse(rotated.stdout) as { current: string }).current);
      expect(await connectWith(c.url, old)).toBe(401);
    } finally {
      await c.close();
    }
  });
});
