import { generateMemberKeys, type MemberKeys } from '../crypto/member-keys.js';
import { createGroupState } from '../crypto/group-state.js';
import { signGroupChange, signRedeem } from '../crypto/signatures.js';
import { GENESIS_PREV, applyEntry, partiesOf, statementOf } from '../group/group-log.js';
import { invitationKeys } from '../invite.js';
import type { KeyStore } from '../keystore/key-store.js';
import { BackchannelError, Charter, SignKey, fromBase64Url, toBase64Url } from '../protocol/index.js';
import { z } from 'zod';
import { sodium, sodiumReady } from '../sodium.js';
import { RelayConnection } from '../transport/relay-connection.js';
import type { Platform } from '../transport/platform.js';
import { ChannelClient } from './channel-client.js';
import { loadRecord, saveRecord, type ChannelRecord } from './channel-record.js';
import { decodeInviteLink } from './invite-link.js';
import { newPurposeKey, sealPurpose } from './purpose.js';
import { applyEntries, catchUp, type SyncResult } from './group-sync.js';
import { prekeySchedule, publishFirstPrekeys, type PrekeyRotation } from './prekey-schedule.js';

/** What every entry point needs: where the relay is, where secrets live, platform pieces. */
export interface ClientOptions {
  /** Key store for keys and session state (MemoryKeyStore, IndexedDbKeyStore, FileKeyStore). */
  readonly store: KeyStore;
  /** Platform pieces; in Node < 22 pass `{ WebSocket }` from the `ws` package. */
  readonly platform?: Partial<Platform>;
  readonly requestTimeoutMs?: number;
  /** When the signed prekey rotates and how long a retired one is kept (default: weekly, a week); the clock is `platform.now`. */
  readonly prekeyRotation?: PrekeyRotation;
  /**
   * The bound on reaching the relay at first (default 10 s): past it the call rejects with
   * `unavailable`, its `cause` the underlying failure, even without a `signal`.
   */
  readonly connectTimeoutMs?: number;
  readonly signal?: AbortSignal;
}

/** What convening reads of the relay's `/.well-known/backchannel.json`. */
const WellKnown = z.looseObject({ recordKey: SignKey });

/** Charter settings when convening; the purpose is encrypted before the relay sees it. */
export type CharterInput = Partial<Omit<Charter, 'purpose'>> & { purpose?: string };

function connection(relay: string, keys: MemberKeys, options: ClientOptions): RelayConnection {
  return new RelayConnection({
    url: relay,
    identity: { publicKey: fromBase64Url(keys.dhPublic)!, secretKey: fromBase64Url(keys.dhSecret)! },
    ...(options.platform ? { platform: options.platform } : {}),
    ...(options.requestTimeoutMs ? { requestTimeoutMs: options.requestTimeoutMs } : {}),
    ...(options.connectTimeoutMs ? { connectTimeoutMs: options.connectTimeoutMs } : {}),
  });
}

/** Runs the rest of an entry point on `conn`: if it fails, the connection is closed (at once) before the failure is passed on. */
async function closingOnFailure<T>(conn: RelayConnection, body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (err) {
    await conn.close(AbortSignal.abort()).catch(() => undefined);
    throw err;
  }
}

/** A fresh record around a verified group state. */
function newRecord(fields: Pick<ChannelRecord, 'relay' | 'channel' | 'role' | 'group' | 'log' | 'anchor' | 'purposeKey'>): ChannelRecord {
  return {
    v: 2,
    ...fields,
    epochs: { [fields.log.epoch]: { stateHash: fields.log.stateHash, parties: partiesOf(fields.log) } },
    intents: { approve: {}, remove: [] },
    verified: {},
    lastSeq: 0,
    outbox: {},
  };
}

/**
 * Convenes a channel on `relay`: the caller becomes its host, under fresh per-channel keys. It
 * signs the genesis of the channel's group log; its hash is the channel's fingerprint.
 */
export async function convene(options: ClientOptions & { relay: string; charter?: CharterInput }): Promise<ChannelClient> {
  const schedule = prekeySchedule(options.prekeyRotation, options.platform);
  await sodiumReady();
  const keys = await generateMemberKeys();
  const purposeKey = newPurposeKey();
  const charter = Charter.parse({ ...options.charter, purpose: sealPurpose(options.charter?.purpose ?? '', purposeKey) });
  const channel = toBase64Url(sodium.randombytes_buf(16));
  const conn = connection(options.relay, keys, options);
  return closingOnFailure(conn, async () => {
    await conn.connect(options.signal);
    // The genesis pins the relay's record-signing key: later keys count only through hand-overs it signed.
    const { recordKey } = WellKnown.parse(await conn.getJson('/.well-known/backchannel.json', options.signal));
    const host = { key: keys.dhPublic, signKey: keys.signPublic };
    const proposal = { epoch: 0, prev: GENESIS_PREV, change: { kind: 'genesis' as const, channel, host, charter, relayKey: recordKey } };
    const sig = await signGroupChange(statementOf(channel, proposal), keys.signSecret);
    const genesis = { ...proposal, sigs: [{ by: keys.dhPublic, sig: toBase64Url(sig) }] };
    const log = await applyEntry(undefined, genesis);
    await conn.request({ type: 'channel.convene', genesis }, options.signal ? { signal: options.signal } : {});
    const record = newRecord({
      relay: options.relay,
      channel,
      role: 'host',
      group: createGroupState({ channel, self: keys }),
      log,
      anchor: { epoch: 0, stateHash: log.stateHash },
      purposeKey,
    });
    await saveRecord(options.store, record);
    const client = new ChannelClient(conn, options.store, record, schedule);
    await client.start(options.signal);
    return client;
  });
}

/**
 * Redeems an invitation link under fresh per-channel keys, and verifies the channel's group log
 * from its genesis (which must hash to the link's fingerprint) through the state the link was
 * issued at. The member is pending until the parties sign its admission: watch `group` events
 * (or `whenActive()`), and tell the parties `myFingerprint()` out of band.
 */
export async function join(options: ClientOptions & { invite: string }): Promise<ChannelClient> {
  const schedule = prekeySchedule(options.prekeyRotation, options.platform);
  await sodiumReady();
  const invite = decodeInviteLink(options.invite);
  const keys = await generateMemberKeys();
  const conn = connection(invite.relay, keys, options);
  const signal = options.signal ? { signal: options.signal } : {};
  return closingOnFailure(conn, async () => {
    await conn.connect(options.signal);
    const inviteKeys = invitationKeys(fromBase64Url(invite.secret)!);
    const redeem = { channel: invite.channel, inviteKey: inviteKeys.publicKey, memberKey: keys.dhPublic, memberSignKey: keys.signPublic };
    const proof = await signRedeem(redeem, inviteKeys.secretKey);
    inviteKeys.secretKey.fill(0);
    await conn.request({ type: 'invite.redeem', channel: invite.channel, invite: toBase64Url(inviteKeys.publicKey), signKey: keys.signPublic, proof: toBase64Url(proof) }, signal);
    const first = await conn.request({ type: 'group.get', channel: invite.channel, from: 0 }, signal);
    let genesis;
    try {
      genesis = await applyEntry(undefined, first.entries[0]);
    } catch (cause) {
      throw new BackchannelError('integrity_group', 'the relay served no valid genesis for this channel', { cause });
    }
    // The fingerprint hashes a statement naming the channel: a match is the same channel.
    if (genesis.fingerprint !== invite.fingerprint) throw new BackchannelError('integrity_group', 'the channel’s genesis does not match the invitation’s fingerprint');
    const bare = newRecord({
      relay: invite.relay,
      channel: invite.channel,
      role: invite.role,
      group: createGroupState({ channel: invite.channel, self: keys }),
      log: genesis,
      anchor: invite.at,
      purposeKey: invite.purposeKey,
    });
    // The first answer already holds the log's first entries: fetch only what it did not.
    let caught: SyncResult = await applyEntries(bare, first.entries);
    if (caught.refused === undefined && caught.record.log.epoch < first.head) caught = await catchUp(conn, caught.record, options.signal);
    if (caught.refused !== undefined) throw new BackchannelError('integrity_group', `the channel’s group log does not verify (${caught.refused.error.message})`, { cause: caught.refused.error });
    if (caught.record.log.epoch < invite.at.epoch) throw new BackchannelError('integrity_group', 'the relay withholds the group log the invitation was issued at');
    // A member admitted after the channel opened takes each sender's counter from its first message.
    let record: ChannelRecord = { ...caught.record, group: { ...caught.record.group, adoptNewSenders: partiesOf(caught.record.log).length > 0 } };
    if (invite.role === 'party') record = await publishFirstPrekeys(conn, record, (r) => saveRecord(options.store, r), schedule.now());
    else await saveRecord(options.store, record);
    const client = new ChannelClient(conn, options.store, record, schedule);
    await client.start(options.signal);
    return client;
  });
}

/** Reopens a channel this store already holds (after a restart): resumes delivery and re-sends. */
export async function reopen(options: ClientOptions & { channel: string }): Promise<ChannelClient> {
  const schedule = prekeySchedule(options.prekeyRotation, options.platform);
  await sodiumReady();
  const record = await loadRecord(options.store, options.channel);
  if (record === undefined) throw new BackchannelError('channel_not_found', 'this store holds no such channel');
  const conn = connection(record.relay, record.group.self, options);
  const client = new ChannelClient(conn, options.store, record, schedule);
  return closingOnFailure(conn, async () => {
    await client.start(options.signal);
    return client;
  });
}

