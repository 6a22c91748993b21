import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import {
  RelayConnection,
  inviteSecretHash,
  newInviteSecret,
  signApproval,
  sodium,
  sodiumReady,
  type WebSocketConstructor,
} from '@backchannel/client-sdk';
import { fromBase64Url, toBase64Url } from '@backchannel/client-sdk/protocol';

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
    const { channel } = await host.conn.request({
      type: 'channel.convene',
      signKey: toBase64Url(host.sign.publicKey),
      charter: { purpose: '', memberCap: size + 1, retentionSec: 7 * 86_400, disappearSec: null, disclosureRule: 'unanimous', hostMayRemove: false },
    });
    for (const p of parties) {
      const secret = newInviteSecret();
      await host.conn.request({ type: 'invite.create', channel, secretHash: toBase64Url(inviteSecretHash(secret)), role: 'party', expiresAt: Date.now() + 600_000 });
      await p.conn.connect();
      await p.conn.request({ type: 'invite.redeem', channel, secret: toBase64Url(secret), signKey: toBase64Url(p.sign.publicKey) });
    }
    for (const a of parties) {
      for (const b of parties) {
        if (a === b) continue;
        const roster = await a.conn.request({ type: 'roster.get', channel });
        const entry = roster.members.find((m) => m.key === b.key);
        if (entry === undefined) throw new Error('member not in roster');
        const sig = await signApproval(
          { channel: fromBase64Url(channel)!, memberKey: b.dh.publicKey, memberSignKey: b.sign.publicKey, rosterVersion: entry.sinceVersion },
          a.sign.secretKey,
        );
        await a.conn.request({ type: 'member.approve', channel, member: b.key, sig: toBase64Url(sig) });
      }
    }
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
