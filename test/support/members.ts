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

/** A member's raw per-channel keys. */
export interface RawMember {
  readonly dh: { publicKey: Uint8Array; secretKey: Uint8Array };
  readonly sign: { publicKey: Uint8Array; secretKey: Uint8Array };
  readonly key: string;
  readonly conn: RelayConnection;
}

/** A relay connection for Node (the `ws` package as WebSocket). */
export function nodeConnection(relayUrl: string, identity: { publicKey: Uint8Array; secretKey: Uint8Array }): RelayConnection {
  return new RelayConnection({
    url: relayUrl,
    identity,
    platform: { WebSocket: WebSocket as unknown as WebSocketConstructor },
    requestTimeoutMs: 5_000,
  });
}

/** Fresh per-channel keys and a (not yet connected) relay connection for them. */
export async function rawMember(relayUrl: string): Promise<RawMember> {
  await sodiumReady();
  const box = sodium.crypto_box_keypair();
  const sig = sodium.crypto_sign_keypair();
  const dh = { publicKey: box.publicKey, secretKey: box.privateKey };
  return { dh, sign: { publicKey: sig.publicKey, secretKey: sig.privateKey }, key: toBase64Url(dh.publicKey), conn: nodeConnection(relayUrl, dh) };
}

/** The same member with a new connection (after the old one was closed). */
export function reconnected(relayUrl: string, m: RawMember): RawMember {
  return { ...m, conn: nodeConnection(relayUrl, m.dh) };
}

/** A convened, open channel: a host and `parties` parties who approved each other. */
export interface OpenChannel {
  readonly channel: string;
  readonly host: RawMember;
  readonly parties: RawMember[];
}

/** Invites `who` as a party of `channel` through `host`, and redeems the invitation. */
export async function inviteAndRedeem(host: RawMember, channel: string, who: RawMember, role: 'party' | 'observer' = 'party'): Promise<void> {
  const secret = newInviteSecret();
  await host.conn.request({ type: 'invite.create', channel, secretHash: toBase64Url(inviteSecretHash(secret)), role, expiresAt: Date.now() + 60_000 });
  await who.conn.connect();
  await who.conn.request({ type: 'invite.redeem', channel, secret: toBase64Url(secret), signKey: toBase64Url(who.sign.publicKey) });
}

/** `by` approves `member` (reading its sinceVersion from the roster). */
export async function approveMember(by: RawMember, channel: string, member: RawMember): Promise<void> {
  const roster = await by.conn.request({ type: 'roster.get', channel });
  const entry = roster.members.find((m) => m.key === member.key);
  if (entry === undefined) throw new Error('member not in roster');
  const sig = await signApproval(
    { channel: fromBase64Url(channel)!, memberKey: member.dh.publicKey, memberSignKey: member.sign.publicKey, rosterVersion: entry.sinceVersion },
    by.sign.secretKey,
  );
  await by.conn.request({ type: 'member.approve', channel, member: member.key, sig: toBase64Url(sig) });
}

/** Convenes a channel and brings `n` founding parties in, all approving each other. */
export async function openChannel(relayUrl: string, n: number, memberCap = 8): Promise<OpenChannel> {
  const host = await rawMember(relayUrl);
  await host.conn.connect();
  const { channel } = await host.conn.request({
    type: 'channel.convene',
    signKey: toBase64Url(host.sign.publicKey),
    charter: { purpose: '', memberCap, retentionSec: 7 * 86_400, disappearSec: null, disclosureRule: 'unanimous', hostMayRemove: false },
  });
  const parties: RawMember[] = [];
  for (let i = 0; i < n; i++) {
    const p = await rawMember(relayUrl);
    await inviteAndRedeem(host, channel, p);
    parties.push(p);
  }
  for (const a of parties) for (const b of parties) if (a !== b) await approveMember(a, channel, b);
  return { channel, host, parties };
}
