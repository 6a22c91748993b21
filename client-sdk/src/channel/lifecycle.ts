import { generateMemberKeys, type MemberKeys } from '../crypto/member-keys.js';
import { createGroupState } from '../crypto/group-state.js';
import type { KeyStore } from '../keystore/key-store.js';
import { BackchannelError, Charter, fromBase64Url } from '../protocol/index.js';
import { sodiumReady } from '../sodium.js';
import { RelayConnection } from '../transport/relay-connection.js';
import type { Platform } from '../transport/platform.js';
import { ChannelClient, publishFirstPrekeys } from './channel-client.js';
import { loadRecord, saveRecord, type ChannelRecord } from './channel-record.js';
import { decodeInviteLink } from './invite-link.js';
import { newPurposeKey, sealPurpose } from './purpose.js';
import { initialTrust } from './roster-trust.js';

/** What every entry point needs: where the relay is, where secrets live, platform pieces. */
export interface ClientOptions {
  /** Key store for keys and session state (MemoryKeyStore, IndexedDbKeyStore, FileKeyStore). */
  readonly store: KeyStore;
  /** Platform pieces; in Node < 22 pass `{ WebSocket }` from the `ws` package. */
  readonly platform?: Partial<Platform>;
  readonly requestTimeoutMs?: number;
  readonly signal?: AbortSignal;
}

/** Charter settings when convening; the purpose is encrypted before the relay sees it. */
export type CharterInput = Partial<Omit<Charter, 'purpose'>> & { purpose?: string };

function connection(relay: string, keys: MemberKeys, options: ClientOptions): RelayConnection {
  return new RelayConnection({
    url: relay,
    identity: { publicKey: fromBase64Url(keys.dhPublic)!, secretKey: fromBase64Url(keys.dhSecret)! },
    ...(options.platform ? { platform: options.platform } : {}),
    ...(options.requestTimeoutMs ? { requestTimeoutMs: options.requestTimeoutMs } : {}),
  });
}

/** Convenes a channel on `relay`: the caller becomes its host, under fresh per-channel keys. */
export async function convene(options: ClientOptions & { relay: string; charter?: CharterInput }): Promise<ChannelClient> {
  await sodiumReady();
  const keys = await generateMemberKeys();
  const conn = connection(options.relay, keys, options);
  await conn.connect(options.signal);
  const purposeKey = newPurposeKey();
  const charter = Charter.parse({ ...options.charter, purpose: sealPurpose(options.charter?.purpose ?? '', purposeKey) });
  const { channel } = await conn.request({ type: 'channel.convene', signKey: keys.signPublic, charter }, options.signal ? { signal: options.signal } : {});
  const record: ChannelRecord = {
    v: 1,
    relay: options.relay,
    channel,
    role: 'host',
    group: createGroupState({ channel, self: keys }),
    trust: initialTrust({ key: keys.dhPublic, signKey: keys.signPublic, role: 'host' }, undefined, []),
    verified: {},
    lastSeq: 0,
    outbox: {},
    purposeKey,
    charter,
  };
  await saveRecord(options.store, record);
  const client = new ChannelClient(conn, options.store, record);
  await client.start(options.signal);
  return client;
}

/**
 * Redeems an invitation link under fresh per-channel keys. The member is pending until every
 * party approves it; watch `roster` events (or `refreshRoster()`) for its activation.
 */
export async function join(options: ClientOptions & { invite: string }): Promise<ChannelClient> {
  await sodiumReady();
  const invite = decodeInviteLink(options.invite);
  const keys = await generateMemberKeys();
  const conn = connection(invite.relay, keys, options);
  await conn.connect(options.signal);
  await conn.request({ type: 'invite.redeem', channel: invite.channel, secret: invite.secret, signKey: keys.signPublic }, options.signal ? { signal: options.signal } : {});
  let record: ChannelRecord = {
    v: 1,
    relay: invite.relay,
    channel: invite.channel,
    role: invite.role,
    // A late joiner adopts each sender's counter from its first message; founders don't need to.
    group: createGroupState({ channel: invite.channel, self: keys, adoptNewSenders: invite.parties.length > 0 }),
    trust: initialTrust({ key: keys.dhPublic, signKey: keys.signPublic, role: invite.role }, invite.host, invite.parties),
    verified: {},
    lastSeq: 0,
    outbox: {},
    purposeKey: invite.purposeKey,
    charter: null,
  };
  if (invite.role === 'party') record = await publishFirstPrekeys(conn, record, (r) => saveRecord(options.store, r));
  else await saveRecord(options.store, record);
  const client = new ChannelClient(conn, options.store, record);
  await client.start(options.signal);
  return client;
}

/** Reopens a channel this store already holds (after a restart): resumes delivery and re-sends. */
export async function reopen(options: ClientOptions & { channel: string }): Promise<ChannelClient> {
  await sodiumReady();
  const record = await loadRecord(options.store, options.channel);
  if (record === undefined) throw new BackchannelError('channel_not_found', 'this store holds no such channel');
  const conn = connection(record.relay, record.group.self, options);
  const client = new ChannelClient(conn, options.store, record);
  await client.start(options.signal);
  return client;
}

