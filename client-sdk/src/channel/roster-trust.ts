import { verifyApproval } from '../crypto/signatures.js';
import type { RosterMember } from '../protocol/index.js';
import { fromBase64Url } from '../protocol/index.js';

/** A member this client has verified, by member key. */
export interface TrustedMember {
  signKey: string;
  role: 'host' | 'party' | 'observer';
}

/** What a client has verified of its channel's roster. JSON-serialisable; persisted with the channel. */
export interface TrustState {
  trusted: Record<string, TrustedMember>;
  /** Members already reported, so each intrusion raises one alarm, not one per roster push. */
  flagged: Record<string, string>;
  /** Set once this client has seen itself active and verified the members it found there. */
  snapshotTaken: boolean;
  /** Party keys the invitation listed as active when it was issued: the anchor of a late joiner. */
  anchor: string[];
}

/** A roster problem, surfaced to the application as an alarm. */
export interface RosterAlarm {
  code: 'integrity_roster' | 'key_changed';
  member: string;
  message: string;
}

/** The outcome of checking one roster. */
export interface RosterCheck {
  trust: TrustState;
  alarms: RosterAlarm[];
  /** Previously trusted members who are gone: their sessions must be discarded. */
  departed: string[];
  /** Verified active parties other than this client: the only members it encrypts to. */
  recipients: string[];
}

/** The first trust state of a member: it trusts itself and the host its invitation named. */
export function initialTrust(self: { key: string; signKey: string; role: TrustedMember['role'] }, host: { key: string; signKey: string } | undefined, anchor: string[]): TrustState {
  const trusted: Record<string, TrustedMember> = { [self.key]: { signKey: self.signKey, role: self.role } };
  if (host !== undefined && host.key !== self.key) trusted[host.key] = { signKey: host.signKey, role: 'host' };
  return { trusted, flagged: {}, snapshotTaken: self.role === 'host', anchor };
}

async function approvedBy(channel: Uint8Array, m: RosterMember, approver: string, approverSignKey: string): Promise<boolean> {
  const entry = m.approvals.find((a) => a.by === approver);
  if (entry === undefined) return false;
  const memberKey = fromBase64Url(m.key);
  const memberSignKey = fromBase64Url(m.signKey);
  if (memberKey === undefined || memberSignKey === undefined) return false;
  return verifyApproval({ channel, memberKey, memberSignKey, rosterVersion: m.sinceVersion }, entry.sig, approverSignKey);
}

/**
 * Checks a roster the relay sent, trusting nothing it says that no party signed. Rules:
 * - once this client is active, a member that appears active must carry a valid approval from
 *   every party this client trusts — itself included — so neither the relay nor the host can add
 *   a member, add a key to one, or swap a pending member's keys without this client's signature;
 * - when this client first finds itself active, each member already there must have approved it
 *   and either carry its approval (founders approve each other) or be named in its invitation;
 * - a trusted member whose sign key changes raises `key_changed` and is no longer trusted.
 * Members that fail are reported once (`integrity_roster`) and never encrypted to.
 */
export async function checkRoster(trust: TrustState, channelId: string, self: string, roster: readonly RosterMember[]): Promise<RosterCheck> {
  const channel = fromBase64Url(channelId);
  if (channel === undefined) throw new TypeError('bad channel id');
  const trusted = { ...trust.trusted };
  const flagged = { ...trust.flagged };
  const alarms: RosterAlarm[] = [];
  const flag = (member: string, code: RosterAlarm['code'], message: string): void => {
    delete trusted[member];
    if (flagged[member] === code) return;
    flagged[member] = code;
    alarms.push({ code, member, message });
  };
  const byKey = new Map(roster.map((m) => [m.key, m]));
  const me = byKey.get(self);
  const selfActive = me?.status === 'active';
  let snapshotTaken = trust.snapshotTaken;

  for (const m of roster) {
    const known = trusted[m.key];
    if (known !== undefined && known.signKey !== m.signKey) flag(m.key, 'key_changed', 'the relay shows a different sign key for a verified member');
  }

  const activeOthers = roster.filter((m) => m.status === 'active' && m.key !== self);
  if (selfActive && !snapshotTaken && me !== undefined) {
    // First sight of ourselves active: verify who was there.
    for (const c of activeOthers) {
      if (trusted[c.key] !== undefined || c.role === 'host') continue;
      const approvedUs = await approvedBy(channel, me, c.key, c.signKey);
      const weApproved = await approvedBy(channel, c, self, trusted[self]!.signKey);
      if (approvedUs && (weApproved || trust.anchor.includes(c.key))) trusted[c.key] = { signKey: c.signKey, role: c.role };
      else flag(c.key, 'integrity_roster', 'a member present at our admission is not backed by approvals we can verify');
    }
    snapshotTaken = true;
  } else if (snapshotTaken) {
    const approvers = Object.entries(trusted).filter(([k, t]) => t.role === 'party' && byKey.get(k)?.status === 'active');
    for (const m of activeOthers) {
      if (trusted[m.key] !== undefined || flagged[m.key] !== undefined) continue;
      if (m.role === 'host') {
        flag(m.key, 'integrity_roster', 'a second host appeared');
        continue;
      }
      let ok = approvers.length > 0;
      for (const [k, t] of approvers) if (ok && !(await approvedBy(channel, m, k, t.signKey))) ok = false;
      if (ok) trusted[m.key] = { signKey: m.signKey, role: m.role };
      else flag(m.key, 'integrity_roster', 'a member became active without every party’s signed approval');
    }
  }

  const departed: string[] = [];
  for (const k of Object.keys(trusted)) {
    if (k === self) continue;
    const m = byKey.get(k);
    if (m === undefined || m.status === 'left' || m.status === 'removed') {
      delete trusted[k];
      departed.push(k);
    }
  }
  const recipients = Object.entries(trusted)
    .filter(([k, t]) => k !== self && t.role === 'party' && byKey.get(k)?.status === 'active')
    .map(([k]) => k);
  return { trust: { ...trust, trusted, flagged, snapshotTaken }, alarms, departed, recipients };
}
