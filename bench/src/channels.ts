import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { RelayConnection, sodium, sodiumReady, type WebSocketConstructor } from '@backchannel/client-sdk';
import { toBase64Url } from '@backchannel/client-sdk/protocol';
import { convene, createInvite, found, rawCharter, redeem } from './raw-group.js';

/**
 * Open channels for the bench, set up through the real governance flow (convene, invite,
 * redeem, every party approving every other), as test/support/members.ts does for the tests.
 * What the load generators get is only each member's key pair; the setup connections close.
 */

/** A member as a load generator needs it: its address and its login key pair (base64url). */
export interface MemberSpec {
  readonly key: string;
  readonly secret: string;
}

/** A channel and its parties. */
export interface GroupSpec {
  readonly channel: string;
  readonly members: MemberSpec[];
}

interface SetupMember {
  readonly dh: { publicKey: Uint8Array; secretKey: Uint8Array };
  readonly sign: { publicKey: Uint8Array; secretKey: Uint8Array };
  readonly key: string;
  readonly conn: RelayConnection;
}

function member(url: string): SetupMember {
  const box = sodium.crypto_box_keypair();
  const sig = sodium.crypto_sign_keypair();
  const dh = { publicKey: box.publicKey, secretKey: box.privateKey };
  const conn = new RelayConnection({ url, identity: dh, platform: { WebSocket: WebSocket as unknown as WebSocketConstructor }, requestTimeoutMs: 30_000 });
  return { dh, sign: { publicKey: sig.publicKey, secretKey: sig.privateKey }, key: toBase64Url(dh.publicKey), conn };
}

async function openGroup(url: string, size: number): Promise<GroupSpec> {
  const host = member(url);
  const parties = Array.from({ length: size }, () => member(url));
  try {
    await host.conn.connect();
    const { channel } = await convene(host, rawCharter(size + 1));
    for (const p of parties) await redeem(p, channel, await createInvite(host, channel));
    await found(channel, parties);
    return { channel, members: parties.map((p) => ({ key: p.key, secret: toBase64Url(p.dh.secretKey) })) };
  } finally {
    await Promise.all([host, ...parties].map((m) => m.conn.close()));
  }
}

/** Opens `count` channels of `size` parties each, `concurrency` at a time. */
export async function openGroups(url: string, count: number, size: number, concurrency = 16, onProgress?: (done: number) => void): Promise<GroupSpec[]> {
  await sodiumReady();
  const out: GroupSpec[] = new Array<GroupSpec>(count);
  let next = 0;
  let done = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      out[i] = await openGroup(url, size);
      onProgress?.(++done);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return out;
}

/** Groups for the ceiling forwarder, which checks nothing: random channel ids and keys. */
export function fakeGroups(count: number, size: number): GroupSpec[] {
  return Array.from({ length: count }, () => ({
    channel: toBase64Url(randomBytes(16)),
    members: Array.from({ length: size }, () => ({ key: toBase64Url(randomBytes(32)), secret: '' })),
  }));
}
