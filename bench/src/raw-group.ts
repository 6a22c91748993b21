/**
 * The group log driven through raw protocol frames, without the SDK's client: convening with a
 * signed genesis, host-signed invitations, redemption, and signed founding and admissions. For
 * the bench (thousands of channels) and for tests that act as a raw client.
 */
import {
  GENESIS_PREV,
  invitationKeys,
  newInviteSecret,
  proposalHash,
  signGrant,
  signGroupChange,
  signRedeem,
  sodium,
  statementOf,
  type RelayConnection,
} from '@backchannel/client-sdk';
import { toBase64Url, type Charter, type GroupChange, type GroupEntry, type GroupProposal, type Seat } from '@backchannel/client-sdk/protocol';

/** A member's raw per-channel keys and its connection. */
export interface RawKeys {
  readonly dh: { publicKey: Uint8Array; secretKey: Uint8Array };
  readonly sign: { publicKey: Uint8Array; secretKey: Uint8Array };
  readonly key: string;
  readonly conn: RelayConnection;
}

/** The default charter of raw channels. */
export function rawCharter(memberCap: number, overrides: Partial<Charter> = {}): Charter {
  return { purpose: '', memberCap, retentionSec: 7 * 86_400, disappearSec: null, disclosureRule: 'unanimous', hostMayRemove: false, ...overrides };
}

/** A signed genesis for a new channel hosted by `host`. */
export async function signedGenesis(host: RawKeys, charter: Charter): Promise<{ channel: string; genesis: GroupEntry }> {
  const channel = toBase64Url(sodium.randombytes_buf(16));
  const proposal: GroupProposal = { epoch: 0, prev: GENESIS_PREV, change: { kind: 'genesis', channel, host: { key: host.key, signKey: toBase64Url(host.sign.publicKey) }, charter } };
  return { channel, genesis: { ...proposal, sigs: [{ by: host.key, sig: await signAs(host, channel, proposal) }] } };
}

/** `who`'s signature over a proposal, base64url. */
export async function signAs(who: RawKeys, channel: string, proposal: GroupProposal): Promise<string> {
  return toBase64Url(await signGroupChange(statementOf(channel, proposal), who.sign.secretKey));
}

/** Convenes a channel through `host`'s connection; returns its id and the genesis. */
export async function convene(host: RawKeys, charter: Charter): Promise<{ channel: string; genesis: GroupEntry }> {
  const g = await signedGenesis(host, charter);
  await host.conn.request({ type: 'channel.convene', genesis: g.genesis });
  return g;
}

/** The host registers an invitation; returns its secret (what a link would carry). */
export async function createInvite(host: RawKeys, channel: string, role: 'party' | 'observer' = 'party', expiresInMs = 600_000): Promise<Uint8Array> {
  const secret = newInviteSecret();
  const keys = invitationKeys(secret);
  const expiresAt = Date.now() + expiresInMs;
  const sig = await signGrant({ channel, inviteKey: keys.publicKey, role, expiresAt }, host.sign.secretKey);
  await host.conn.request({ type: 'invite.create', channel, invite: { key: toBase64Url(keys.publicKey), role, expiresAt, sig: toBase64Url(sig) } });
  return secret;
}

/** `who` redeems the invitation `secret` (connecting first). */
export async function redeem(who: RawKeys, channel: string, secret: Uint8Array): Promise<void> {
  const keys = invitationKeys(secret);
  const proof = await signRedeem({ channel, inviteKey: keys.publicKey, memberKey: who.dh.publicKey, memberSignKey: who.sign.publicKey }, keys.secretKey);
  await who.conn.connect();
  await who.conn.request({ type: 'invite.redeem', channel, invite: toBase64Url(keys.publicKey), signKey: toBase64Url(who.sign.publicKey), proof: toBase64Url(proof) });
}

/** The relay's head entry and pending seats, as `who` reads them (from epoch 0). */
export async function readGroup(who: RawKeys, channel: string): Promise<{ entries: GroupEntry[]; pending: Seat[] }> {
  const entries: GroupEntry[] = [];
  let pending: Seat[] = [];
  for (;;) {
    const frame = await who.conn.request({ type: 'group.get', channel, from: entries.length });
    entries.push(...frame.entries);
    pending = frame.pending;
    if (frame.entries.length === 0 || entries.length > frame.head) return { entries, pending };
  }
}

/** The relay's head as `who` reads it: epoch and state hash; and the channel's fingerprint. */
export async function headOf(who: RawKeys, channel: string): Promise<{ epoch: number; stateHash: string; fingerprint: string }> {
  const { entries } = await readGroup(who, channel);
  const head = entries.at(-1)!;
  return { epoch: head.epoch, stateHash: proposalHash(channel, head), fingerprint: proposalHash(channel, entries[0]!) };
}

/** A proposal of `change` on the relay's current head, as `who` reads it. */
export async function proposalOnHead(who: RawKeys, channel: string, change: GroupChange): Promise<GroupProposal> {
  const { epoch, stateHash } = await headOf(who, channel);
  return { epoch: epoch + 1, prev: stateHash, change };
}

/** `who` signs `change` on top of the relay's current head. */
export async function signChange(who: RawKeys, channel: string, change: GroupChange): Promise<void> {
  const proposal = await proposalOnHead(who, channel, change);
  await who.conn.request({ type: 'group.sign', channel, proposal, sig: await signAs(who, channel, proposal) });
}

/** Every founder signs the founding of the pending `founders`. */
export async function found(channel: string, founders: readonly RawKeys[]): Promise<void> {
  const { pending } = await readGroup(founders[0]!, channel);
  const keys = new Set(founders.map((f) => f.key));
  const members = pending.filter((s) => keys.has(s.key)).sort((a, b) => (a.key < b.key ? -1 : 1));
  for (const f of founders) await signChange(f, channel, { kind: 'found', members });
}

/** Every party in `parties` signs the admission of pending `who`. */
export async function admit(channel: string, parties: readonly RawKeys[], who: RawKeys): Promise<void> {
  const { pending } = await readGroup(parties[0]!, channel);
  const seat = pending.find((s) => s.key === who.key);
  if (seat === undefined) throw new Error('not pending');
  for (const p of parties) await signChange(p, channel, { kind: 'add', member: seat });
}
