/**
 * The group log: the one place that owns a channel's group state (epoch, state hash, members with
 * keys and roles, charter, dissolution) and the one function that changes it, {@link applyEntry}.
 * Everything that decides who gets a key reads a state this module computed from signed entries;
 * nothing is taken from what a relay asserts.
 *
 * State hash: `H_0 = BLAKE2b-256("backchannel/group-state/v1" ‖ statement(genesis))` is the
 * channel's fingerprint; `H_e = BLAKE2b-256(label ‖ statement(entry e))`, where each statement
 * holds the channel, the epoch and `H_{e-1}`, so the hash commits to the whole history.
 *
 * Who must sign (computed from the verified state, never from the relay):
 * | change    | signatures                                                                |
 * | --------- | ------------------------------------------------------------------------- |
 * | genesis   | the host it names                                                          |
 * | found     | every founder it lists (two or more), while the channel has no party       |
 * | add       | every party                                                               |
 * | remove    | every other party, or the host alone where the charter lets it remove      |
 * | leave     | the member leaving                                                         |
 * | role      | every party                                                               |
 * | charter   | every party                                                               |
 * | dissolve  | any one party                                                             |
 * Added members carry an invitation the host signed (binding the role) and their keys signed by
 * that invitation's key, so neither the relay nor a party can seat keys nobody invited.
 */
import {
  BackchannelError,
  GroupEntry,
  toBase64Url,
  utf8,
  type Charter,
  type GroupChange,
  type GroupProposal,
  type Seat,
} from '../protocol/index.js';
import { sodium, sodiumReady } from '../sodium.js';
import { concat, label } from '../crypto/bytes.js';
import { groupMessage, verifyGrant, verifyGroupChange, verifyRedeem, type GroupStatement } from '../crypto/signatures.js';

const STATE_LABEL = label('backchannel/group-state/v1');
/** The `prev` of a genesis: 32 zero bytes. */
export const GENESIS_PREV = toBase64Url(new Uint8Array(32));

/** A member of the verified group state. */
export interface GroupMember {
  readonly signKey: string;
  readonly role: 'host' | 'party' | 'observer';
}

/** A channel's group state as this client computed it. JSON-serialisable. */
export interface GroupLogState {
  readonly channel: string;
  /** Hash of the genesis: what parties compare out of band and observers pin. */
  readonly fingerprint: string;
  readonly epoch: number;
  readonly stateHash: string;
  /** The host's member key. */
  readonly host: string;
  /** Every member, the host included, by member key. */
  readonly members: Readonly<Record<string, GroupMember>>;
  readonly charter: Charter;
  readonly dissolved: boolean;
  /** The relay record key the genesis pinned, if it did. */
  readonly relayKey?: string;
}

/** JSON with object keys sorted at every level: one encoding for one value. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** The statement a proposal's signatures cover. */
export function statementOf(channel: string, proposal: GroupProposal): GroupStatement {
  return { channel, epoch: proposal.epoch, prev: proposal.prev, change: utf8(canonicalJson(proposal.change)) };
}

/** The state hash a proposal leads to (base64url). */
export function proposalHash(channel: string, proposal: GroupProposal): string {
  return toBase64Url(sodium.crypto_generichash(32, concat(STATE_LABEL, groupMessage(statementOf(channel, proposal))), null));
}

/** Member keys of the parties of `state`. */
export function partiesOf(state: GroupLogState): string[] {
  return Object.entries(state.members)
    .filter(([, m]) => m.role === 'party')
    .map(([k]) => k);
}

/** Who may sign a change, and when enough have. */
export interface SignerRule {
  /** Member key → sign key of everyone whose signature counts. */
  readonly eligible: ReadonlyMap<string, string>;
  /** Whether the signers in `signed` are enough. */
  complete(signed: ReadonlySet<string>): boolean;
}

const fail = (code: 'group_invalid' | 'forbidden' | 'member_not_found' | 'already_member' | 'channel_full' | 'charter_invalid', message: string): never => {
  throw new BackchannelError(code, message);
};

function allOf(eligible: Map<string, string>): SignerRule {
  if (eligible.size === 0) fail('forbidden', 'nobody could sign this change');
  return { eligible, complete: (signed) => [...eligible.keys()].every((k) => signed.has(k)) };
}

function signKeysOf(state: GroupLogState, keys: readonly string[]): Map<string, string> {
  return new Map(keys.map((k) => [k, state.members[k]!.signKey]));
}

function existing(state: GroupLogState, member: string): GroupMember {
  const m = state.members[member];
  if (m === undefined) fail('member_not_found', 'no such member in the group state');
  if (m!.role === 'host') fail('forbidden', 'the host’s seat cannot change');
  return m!;
}

function seatable(state: GroupLogState, seats: readonly Seat[]): void {
  const keys = new Set(seats.map((s) => s.key));
  if (keys.size !== seats.length) fail('group_invalid', 'a member is listed twice');
  for (const s of seats) if (state.members[s.key] !== undefined) fail('already_member', 'already a member');
  if (Object.keys(state.members).length + seats.length > state.charter.memberCap) fail('channel_full', 'the charter member cap is reached');
}

/** Who must sign `change` on top of `state` (throws the rule it breaks). */
export function signerRule(state: GroupLogState, change: GroupChange): SignerRule {
  const parties = partiesOf(state);
  switch (change.kind) {
    case 'genesis':
      return fail('group_invalid', 'a second genesis');
    case 'found':
      if (parties.length > 0) fail('forbidden', 'the channel already has parties');
      seatable(state, change.members);
      if (change.members.some((s) => s.role !== 'party')) fail('group_invalid', 'founders are parties');
      return allOf(new Map(change.members.map((s) => [s.key, s.signKey])));
    case 'add':
      // Before the founding there is no party: allOf() refuses (nobody could sign).
      seatable(state, [change.member]);
      return allOf(signKeysOf(state, parties));
    case 'remove': {
      existing(state, change.member);
      const others = new Map([...signKeysOf(state, parties)].filter(([k]) => k !== change.member));
      const host = state.members[state.host]!;
      if (!state.charter.hostMayRemove) return allOf(others);
      const eligible = new Map(others).set(state.host, host.signKey);
      return { eligible, complete: (signed) => signed.has(state.host) || (others.size > 0 && [...others.keys()].every((k) => signed.has(k))) };
    }
    case 'leave':
      return allOf(new Map([[change.member, existing(state, change.member).signKey]]));
    case 'role':
      if (existing(state, change.member).role === change.role) fail('group_invalid', 'the member already has that role');
      return allOf(signKeysOf(state, parties));
    case 'charter':
      if (change.charter.memberCap < Object.keys(state.members).length) fail('charter_invalid', 'the member cap is below the members already seated');
      return allOf(signKeysOf(state, parties));
    case 'dissolve':
      // Any one party; with no party nobody is eligible, so no signature can complete it.
      return { eligible: signKeysOf(state, parties), complete: (signed) => signed.size > 0 };
  }
}

/** Checks a seat: the host signed its invitation (with its role), and the invitation's key signed its keys. */
export async function verifySeat(channel: string, hostSignKey: string, seat: Seat): Promise<boolean> {
  if (seat.role !== seat.invite.role) return false;
  const grant = { channel, inviteKey: seat.invite.key, role: seat.invite.role, expiresAt: seat.invite.expiresAt };
  if (!(await verifyGrant(grant, seat.invite.sig, hostSignKey))) return false;
  return verifyRedeem({ channel, inviteKey: seat.invite.key, memberKey: seat.key, memberSignKey: seat.signKey }, seat.proof, seat.invite.key);
}

function next(state: GroupLogState, change: GroupChange, epoch: number, stateHash: string): GroupLogState {
  const members = { ...state.members };
  switch (change.kind) {
    case 'found':
      for (const s of change.members) members[s.key] = { signKey: s.signKey, role: s.role };
      break;
    case 'add':
      members[change.member.key] = { signKey: change.member.signKey, role: change.member.role };
      break;
    case 'remove':
    case 'leave':
      delete members[change.member];
      break;
    case 'role':
      members[change.member] = { ...members[change.member]!, role: change.role };
      break;
    case 'charter':
      return { ...state, epoch, stateHash, charter: change.charter };
    case 'dissolve':
      return { ...state, epoch, stateHash, dissolved: true };
  }
  return { ...state, epoch, stateHash, members };
}

async function checkSignatures(channel: string, entry: GroupEntry, rule: SignerRule): Promise<void> {
  const statement = statementOf(channel, entry);
  const signed = new Set<string>();
  for (const s of entry.sigs) {
    const signKey = rule.eligible.get(s.by);
    if (signKey === undefined || signed.has(s.by)) throw new BackchannelError('group_signature', 'a signature by a member who may not sign this change');
    if (!(await verifyGroupChange(statement, s.sig, signKey))) throw new BackchannelError('group_signature', 'a signature does not verify');
    signed.add(s.by);
  }
  if (!rule.complete(signed)) throw new BackchannelError('group_signature', 'the change lacks signatures its state requires');
}

/**
 * Applies one log entry to `state` (`undefined` before the genesis) and returns the new state.
 * Throws a {@link BackchannelError}: `group_invalid` (malformed, or breaks a rule), `group_stale`
 * (another epoch, or built on another state), `group_signature` (a signature missing, extra or
 * bad), or the rule's own code (`forbidden`, `member_not_found`, `already_member`,
 * `channel_full`, `charter_invalid`).
 */
export async function applyEntry(state: GroupLogState | undefined, input: unknown): Promise<GroupLogState> {
  await sodiumReady();
  const parsed = GroupEntry.safeParse(input);
  if (!parsed.success) throw new BackchannelError('group_invalid', 'not a group log entry');
  const entry = parsed.data;
  const change = entry.change;
  if (state === undefined) {
    if (change.kind !== 'genesis' || entry.epoch !== 0 || entry.prev !== GENESIS_PREV) throw new BackchannelError('group_invalid', 'the log does not start with a genesis');
    const rule = allOf(new Map([[change.host.key, change.host.signKey]]));
    await checkSignatures(change.channel, entry, rule);
    const hash = proposalHash(change.channel, entry);
    const members = { [change.host.key]: { signKey: change.host.signKey, role: 'host' as const } };
    const pinned = change.relayKey === undefined ? {} : { relayKey: change.relayKey };
    return { channel: change.channel, fingerprint: hash, epoch: 0, stateHash: hash, host: change.host.key, members, charter: change.charter, dissolved: false, ...pinned };
  }
  if (state.dissolved) throw new BackchannelError('group_invalid', 'the channel is dissolved');
  if (entry.epoch !== state.epoch + 1 || entry.prev !== state.stateHash) throw new BackchannelError('group_stale', 'the change builds on another state');
  const rule = signerRule(state, change);
  if (change.kind === 'found' || change.kind === 'add') {
    const hostSignKey = state.members[state.host]!.signKey;
    for (const seat of change.kind === 'found' ? change.members : [change.member]) {
      if (!(await verifySeat(state.channel, hostSignKey, seat))) throw new BackchannelError('group_signature', 'a seat without a valid invitation');
    }
  }
  await checkSignatures(state.channel, entry, rule);
  return next(state, change, entry.epoch, proposalHash(state.channel, entry));
}

/** Verifies a whole log from its genesis; the genesis must hash to `fingerprint` when given. */
export async function replayLog(entries: readonly unknown[], fingerprint?: string): Promise<GroupLogState> {
  let state: GroupLogState | undefined;
  for (const e of entries) state = await applyEntry(state, e);
  if (state === undefined) throw new BackchannelError('group_invalid', 'an empty log');
  if (fingerprint !== undefined && state.fingerprint !== fingerprint) throw new BackchannelError('group_invalid', 'the log belongs to another channel');
  return state;
}
