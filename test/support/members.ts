import WebSocket from 'ws';
import { RelayConnection, proposalHash, sodium, sodiumReady, type WebSocketConstructor } from '@backchannel/client-sdk';
import { toBase64Url, type Charter } from '@backchannel/client-sdk/protocol';
import { convene, createInvite, found, rawCharter, redeem } from '../../bench/src/raw-group.js';

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
  /** The channel's fingerprint (its genesis hash), as the host computed it. */
  readonly fingerprint: string;
  readonly host: RawMember;
  readonly parties: RawMember[];
}

/** Invites `who` as a party of `channel` through `host`, and redeems the invitation. */
export async function inviteAndRedeem(host: RawMember, channel: string, who: RawMember, role: 'party' | 'observer' = 'party'): Promise<void> {
  await redeem(who, channel, await createInvite(host, channel, role));
}

/** Convenes a channel and brings `n` founding parties in, who sign its founding. */
export async function openChannel(relayUrl: string, n: number, memberCap = 8, charter: Partial<Charter> = {}): Promise<OpenChannel> {
  const host = await rawMember(relayUrl);
  await host.conn.connect();
  const { channel, genesis } = await convene(host, rawCharter(memberCap, charter));
  const parties: RawMember[] = [];
  for (let i = 0; i < n; i++) {
    const p = await rawMember(relayUrl);
    await inviteAndRedeem(host, channel, p);
    parties.push(p);
  }
  await found(channel, parties);
  return { channel, host, parties, fingerprint: proposalHash(channel, genesis) };
}
