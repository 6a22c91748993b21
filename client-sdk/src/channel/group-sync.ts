import { memberFingerprint } from '../crypto/safety-number.js';
import { signGroupChange } from '../crypto/signatures.js';
import { applyEntry, canonicalJson, partiesOf, statementOf, verifySeat, type GroupLogState } from '../group/group-log.js';
import { BackchannelError, toBase64Url, type GroupChange, type GroupProposal, type Seat } from '../protocol/index.js';
import type { RelayConnection } from '../transport/relay-connection.js';
import type { ChannelRecord } from './channel-record.js';

/** A member waiting for admission, as this client verified its invitation. */
export interface PendingMember {
  readonly key: string;
  readonly signKey: string;
  readonly role: 'party' | 'observer';
  /** Compare it with the invitee (out of band) before approving. */
  readonly fingerprint: string;
  readonly seat: Seat;
}

/** What following the log found: the new record, entries that did not verify, seats that did not. */
export interface SyncResult {
  record: ChannelRecord;
  /** Changes applied, oldest first. */
  applied: GroupChange[];
  /** An entry the relay served that does not verify (not applied), with its canonical text. */
  refused?: { epoch: number; entry: string; error: BackchannelError };
}

/** Applies entries that extend `record.log`, in order, stopping at a gap or at the first that fails. */
export async function applyEntries(record: ChannelRecord, entries: readonly unknown[]): Promise<SyncResult> {
  let log = record.log;
  let epochs = record.epochs;
  const applied: GroupChange[] = [];
  for (const raw of entries) {
    const epoch = (raw as { epoch?: unknown }).epoch;
    if (typeof epoch === 'number' && epoch <= log.epoch) continue;
    if (typeof epoch === 'number' && epoch > log.epoch + 1) break; // a gap: the caller fetches what is missing
    let next: GroupLogState;
    try {
      next = await applyEntry(log, raw);
      if (next.epoch === record.anchor.epoch && next.stateHash !== record.anchor.stateHash) {
        throw new BackchannelError('integrity_group', 'the log does not pass through the state the invitation was issued at');
      }
    } catch (err) {
      const error = BackchannelError.is(err) ? err : new BackchannelError('group_invalid', 'unreadable entry', { cause: err });
      return { record: { ...record, log, epochs }, applied, refused: { epoch: typeof epoch === 'number' ? epoch : -1, entry: canonicalJson(raw), error } };
    }
    applied.push((raw as { change: GroupChange }).change);
    log = next;
    epochs = { ...epochs, [log.epoch]: { stateHash: log.stateHash, parties: partiesOf(log) } };
  }
  return { record: { ...record, log, epochs }, applied };
}

/** Fetches and verifies every entry after `record.log` up to the relay's head. */
export async function catchUp(conn: RelayConnection, record: ChannelRecord, signal?: AbortSignal): Promise<SyncResult & { pending: readonly Seat[]; head: number }> {
  let current = record;
  const applied: GroupChange[] = [];
  for (;;) {
    const frame = await conn.request({ type: 'group.get', channel: record.channel, from: current.log.epoch + 1 }, signal ? { signal } : {});
    const result = await applyEntries(current, frame.entries);
    current = result.record;
    applied.push(...result.applied);
    if (result.refused !== undefined) return { ...result, applied, pending: frame.pending, head: frame.head };
    if (current.log.epoch >= frame.head || frame.entries.length === 0) return { record: current, applied, pending: frame.pending, head: frame.head };
  }
}

/** Pending members whose invitation the host signed and whose keys that invitation vouches for. */
export async function verifyPending(log: GroupLogState, seats: readonly Seat[]): Promise<PendingMember[]> {
  const host = log.members[log.host]!;
  const out: PendingMember[] = [];
  for (const seat of seats) {
    if (log.members[seat.key] !== undefined) continue;
    if (!(await verifySeat(log.channel, host.signKey, seat))) continue;
    out.push({ key: seat.key, signKey: seat.signKey, role: seat.role, fingerprint: await memberFingerprint(seat), seat });
  }
  return out;
}

/** Signs `change` on top of the verified state and hands the signature to the relay. */
export async function proposeChange(conn: RelayConnection, record: ChannelRecord, change: GroupChange, signal?: AbortSignal): Promise<void> {
  const proposal: GroupProposal = { epoch: record.log.epoch + 1, prev: record.log.stateHash, change };
  const sig = await signGroupChange(statementOf(record.channel, proposal), record.group.self.signSecret);
  await conn.request({ type: 'group.sign', channel: record.channel, proposal, sig: toBase64Url(sig) }, signal ? { signal } : {});
}

/**
 * The admission this member should sign for `seat` on the verified state: a founding (itself and
 * every pending member it approved) while the channel has no party, else an `add`.
 */
export function admissionFor(record: ChannelRecord, pending: readonly PendingMember[], seat: Seat): GroupChange {
  if (partiesOf(record.log).length > 0) return { kind: 'add', member: seat };
  const self = record.group.self.dhPublic;
  const mine = pending.find((p) => p.key === self);
  if (mine === undefined) throw new BackchannelError('not_member', 'only a pending founder can found the channel');
  const founders = pending.filter((p) => p.role === 'party' && (p.key === self || record.intents.approve[p.key] === p.signKey));
  const members = [...new Map(founders.map((p) => [p.key, p.seat])).values()].sort((a, b) => (a.key < b.key ? -1 : 1));
  return { kind: 'found', members };
}

/** Why a message sent at `sentAt` by `sender` cannot be accepted by `record`'s member, if it cannot. */
export function senderStateRefusal(record: ChannelRecord, sender: string, sentAt: { epoch: number; stateHash: string }): { code: 'integrity_group' | 'integrity_fork' | 'integrity_roster'; message: string } | undefined {
  // Epochs are known without gaps from the genesis: only one past ours can be missing.
  const known = record.epochs[sentAt.epoch];
  if (known === undefined) return { code: 'integrity_group', message: 'the sender saw group changes the relay does not show us' };
  if (known.stateHash !== sentAt.stateHash) return { code: 'integrity_fork', message: `the sender's group state at epoch ${sentAt.epoch} differs from ours: the relay shows us different logs` };
  if (!known.parties.includes(sender)) return { code: 'integrity_roster', message: 'the sender was not a party at the epoch it sent at' };
  return undefined;
}
