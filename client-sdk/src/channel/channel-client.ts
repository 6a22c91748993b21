import { MAX_REMEMBERED_RECEIPTS, expireSkippedKeysByAge, forgetPeer, nextSkippedKeyDeadline, recordReceipt, rememberDelivered } from '../crypto/group-state.js';
import { windowGet, windowSet } from '../crypto/seq-window.js';
import { openGroupMessage, recipientsNeedingSession, sealGroupMessage, startSession } from '../crypto/group-message.js';
import { addOneTimePrekeys, nextPrekeyDeadline, unusedOneTimePrekeys } from '../crypto/prekeys.js';
import { memberFingerprint, safetyNumber } from '../crypto/safety-number.js';
import { signGrant } from '../crypto/signatures.js';
import { partiesOf } from '../group/group-log.js';
import { invitationKeys, newInviteSecret } from '../invite.js';
import type { KeyStore } from '../keystore/key-store.js';
import { BackchannelError, Charter, toBase64Url, type GroupChange, type RelayFrameOf, type Seat } from '../protocol/index.js';
import { sodium } from '../sodium.js';
import type { RelayConnection } from '../transport/relay-connection.js';
import type { ConnectionState } from '../transport/state.js';
import { recordKey, saveRecord, type AuthoredDraft, type ChannelRecord } from './channel-record.js';
import { decodeContent, encodeContent, type Draft, type MessageContent } from './content.js';
import { DisclosureDesk } from './disclosure-desk.js';
import type { ChannelAlarm, ChannelEvents, GroupView, Sent } from './channel-events.js';
import { Emitter } from './emitter.js';
import { admissionFor, applyEntries, catchUp, proposeChange, senderStateRefusal, verifyPending, type PendingMember, type SyncResult } from './group-sync.js';
import { cosignHead } from './formal-checkpoint.js';
import { encodeInviteLink } from './invite-link.js';
import { Mutex } from './mutex.js';
import { PREKEY_LOW, PREKEY_TARGET, publishFirstPrekeys, upkeepPrekeys, type PrekeySchedule } from './prekey-schedule.js';
import { openPurpose, sealPurpose } from './purpose.js';
import type { CharterInput } from './lifecycle.js';

/** Longest delay a platform timer takes (2^31 - 1 ms); a later deadline is checked again then. */
const MAX_TIMER_MS = 2_147_483_647;

/**
 * One member's view of one channel: sending and receiving end-to-end encrypted messages,
 * following and verifying the group log, approving members, leaving. Created by `convene` or
 * `join`.
 *
 * Who receives keys is decided by the group state this client verified from signed log entries
 * alone; nothing the relay asserts (statuses, roles, the charter, dissolution) is believed.
 *
 * Delivery semantics: each message reaches `message` listeners exactly once, in channel order,
 * after the state that consumed its keys is saved; integrity problems reach `alarm` listeners.
 */
export class ChannelClient {
  readonly #conn: RelayConnection;
  readonly #store: KeyStore;
  readonly #events = new Emitter<ChannelEvents>();
  readonly #mutex = new Mutex();
  readonly #openings = new Map<string, { frankingKey: string; plaintext: string }>();
  #record: ChannelRecord;
  #pending: PendingMember[] = [];
  /** Pending members already announced, so each raises one `pending` event. */
  readonly #announced = new Set<string>();
  /** Refused entries already reported, so each raises one alarm. */
  readonly #refused = new Set<string>();
  #unsubscribe: (() => void) | undefined;
  /** The clock, and when signed prekeys rotate: key upkeep (prekeys, skipped-key expiry) runs on it. */
  readonly #schedule: PrekeySchedule;
  #upkeepTimer: unknown;
  /** The signed prekey id the relay confirmed holding, since this client started. */
  #publishedSignedPrekey: number | undefined;
  #closed = false;
  #ended = false;
  /** Staged disclosure: propose, consent, veto, withdraw, publish. */
  readonly disclosure: DisclosureDesk;

  /** @internal Use `convene` or `join`. */
  constructor(conn: RelayConnection, store: KeyStore, record: ChannelRecord, schedule: PrekeySchedule) {
    this.#conn = conn;
    this.#store = store;
    this.#record = record;
    this.#schedule = schedule;
    this.disclosure = new DisclosureDesk(conn, {
      channel: record.channel,
      signSecret: record.group.self.signSecret,
      draft: (id) => this.#record.drafts?.[id],
      group: () => ({ epoch: this.#record.log.epoch, stateHash: this.#record.log.stateHash }),
      received: (seq) => windowGet(this.#record.group.delivered, seq),
      author: (seq) => windowGet(this.#record.authors ?? [], seq),
      vetoed: (proposalId) =>
        this.#mutex.run(async () => {
          this.#record = { ...this.#record, vetoed: [...new Set([...(this.#record.vetoed ?? []), proposalId])] };
          await this.#save();
        }),
    });
    conn.onStateChange((change) => {
      this.#events.emit('state', change);
      if (change.to === 'open') void this.#mutex.run(() => this.#sync()).catch(() => undefined);
    });
    conn.onPush((frame) => {
      if (frame.channel !== this.id) return;
      if (frame.type === 'group') void this.#mutex.run(() => this.#onGroupPush(frame)).catch(() => undefined);
      else if (frame.type === 'disclosure') {
        this.#events.emit('disclosure', frame);
        if (frame.stage === 'published' && this.role === 'party') void this.cosignFormalLog().catch(() => undefined);
      }
      else this.#events.emit('expired', frame.clientMsgIds);
    });
  }

  /** The channel id. */
  get id(): string {
    return this.#record.channel;
  }

  /** The channel's fingerprint (the hash of its genesis): compare it out of band. */
  get fingerprint(): string {
    return this.#record.log.fingerprint;
  }

  /** This member's key in the channel (its per-channel X25519 public key). */
  get memberKey(): string {
    return this.#record.group.self.dhPublic;
  }

  /** This member's role: from the verified group state once admitted, else the invitation's. */
  get role(): ChannelRecord['role'] {
    return this.#record.log.members[this.memberKey]?.role ?? this.#record.role;
  }

  /** The connection state. */
  get connectionState(): ConnectionState {
    return this.#conn.state;
  }

  /** The charter's purpose text, when this member holds its key. */
  get purpose(): string | undefined {
    return this.#record.purposeKey === null ? undefined : openPurpose(this.#record.log.charter.purpose, this.#record.purposeKey);
  }

  /** Listens to an event; returns the function that stops listening. */
  on<K extends keyof ChannelEvents>(event: K, listener: (value: ChannelEvents[K]) => void): () => void {
    const stop = this.#events.on(event, listener);
    if (event === 'pending') {
      // Members that were already pending when the listener came (say, found while joining).
      const awaiting = this.#awaitingMe();
      queueMicrotask(() => {
        for (const p of awaiting) (listener as (value: PendingMember) => void)(p);
      });
    }
    return stop;
  }

  /** Pending members this member could approve and has not. */
  #awaitingMe(): PendingMember[] {
    const self = this.memberKey;
    const founding = partiesOf(this.#record.log).length === 0 && this.#pending.some((p) => p.key === self);
    if (this.role !== 'party' && !founding) return [];
    return this.#pending.filter((p) => p.key !== self && this.#record.intents.approve[p.key] === undefined);
  }

  /** This member's fingerprint, for a party to compare before approving it. */
  myFingerprint(): Promise<string> {
    return memberFingerprint({ key: this.memberKey, signKey: this.#record.group.self.signPublic });
  }

  /** @internal Starts delivery and re-sends what a crash left unacknowledged. */
  async start(signal?: AbortSignal): Promise<void> {
    await this.#conn.connect(signal);
    await this.#mutex.run(() => this.#sync(signal));
    for (const [clientMsgId, sealed] of Object.entries(this.#record.outbox)) void this.#transmit(clientMsgId, sealed).catch(() => undefined);
  }

  /** The group state as this client last verified it. */
  group(): GroupView {
    const log = this.#record.log;
    return {
      epoch: log.epoch,
      stateHash: log.stateHash,
      fingerprint: log.fingerprint,
      dissolved: log.dissolved,
      charter: log.charter,
      members: Object.entries(log.members).map(([key, m]) => ({ key, signKey: m.signKey, role: m.role, verified: this.#record.verified[key] === m.signKey })),
      pending: this.#pending,
    };
  }

  /** Resolves once this member is in the verified group state. Rejects with `aborted` when `signal` fires. */
  whenActive(signal?: AbortSignal): Promise<void> {
    const active = (): boolean => this.#record.log.members[this.memberKey] !== undefined;
    if (active()) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const stop = this.on('group', () => {
        if (!active()) return;
        stop();
        resolve();
      });
      signal?.addEventListener('abort', () => {
        stop();
        reject(new BackchannelError('aborted', 'aborted', { cause: signal.reason }));
      }, { once: true });
    });
  }

  /** Fetches and verifies the group log up to the relay's head. */
  async refreshGroup(signal?: AbortSignal): Promise<GroupView> {
    await this.#mutex.run(() => this.#sync(signal));
    return this.group();
  }

  /** Sends text to every party of the verified group state. Resolves once the relay has durably stored it. */
  sendText(text: string, options: { signal?: AbortSignal } = {}): Promise<Sent> {
    return this.#send({ kind: 'text', text }, options.signal);
  }

  /** Sends bytes to every party of the verified group state. Resolves once the relay has durably stored it. */
  sendBytes(bytes: Uint8Array, options: { signal?: AbortSignal } = {}): Promise<Sent> {
    return this.#send({ kind: 'bytes', bytes }, options.signal);
  }

  /**
   * Drafts a disclosure inside the channel: the draft travels encrypted to every party like a
   * message, and the relay learns nothing of it. Returns the proposal id to propose it under.
   */
  async draft(content: Draft['content'], options: { releaseAt?: number; signal?: AbortSignal } = {}): Promise<string> {
    const proposalId = toBase64Url(sodium.randombytes_buf(16));
    const draft: Draft = { proposalId, content, releaseAt: options.releaseAt ?? 0 };
    await this.#send({ kind: 'draft', draft }, options.signal);
    await this.#mutex.run(async () => {
      this.#record = { ...this.#record, drafts: { ...this.#record.drafts, [proposalId]: { ...draft, author: this.memberKey } } };
      await this.#save();
    });
    return proposalId;
  }

  /** Disclosure drafts this member has read or written, each with its author. */
  drafts(): AuthoredDraft[] {
    return Object.values(this.#record.drafts ?? {});
  }

  /**
   * (Host) Issues an invitation link; hand it to the invitee out of band. The link carries the
   * channel's fingerprint and the current verified state; its secret never reaches the relay.
   */
  async invite(options: { role?: 'party' | 'observer'; expiresInMs?: number; signal?: AbortSignal } = {}): Promise<string> {
    if (this.role !== 'host') throw new BackchannelError('wrong_role', 'only the host invites');
    await this.refreshGroup(options.signal);
    const secret = newInviteSecret();
    const keys = invitationKeys(secret);
    const role = options.role ?? 'party';
    const expiresAt = Date.now() + (options.expiresInMs ?? 86_400_000);
    const grant = { channel: this.id, inviteKey: keys.publicKey, role, expiresAt };
    const sig = await signGrant(grant, this.#record.group.self.signSecret);
    keys.secretKey.fill(0);
    await this.#conn.request({ type: 'invite.create', channel: this.id, invite: { key: toBase64Url(keys.publicKey), role, expiresAt, sig: toBase64Url(sig) } }, options);
    const log = this.#record.log;
    return encodeInviteLink({
      relay: this.#record.relay,
      channel: this.id,
      fingerprint: log.fingerprint,
      at: { epoch: log.epoch, stateHash: log.stateHash },
      secret: toBase64Url(secret),
      role,
      purposeKey: this.#record.purposeKey ?? toBase64Url(new Uint8Array(32)),
    });
  }

  /**
   * (Party) Signs the admission of a pending member. Pass the `fingerprint` the invitee read out
   * to you (checked against the member's keys: `not_verified` if it differs), or
   * `{ unverified: true }` to approve without comparing — an explicit choice. The SDK keeps
   * signing this admission on every new state until it lands. Approving a member the verified
   * state already holds does nothing. While the channel has no party, approvals found it: the
   * first two pending founders who approved each other open it, and later ones are admitted.
   */
  async approve(member: string, options: { fingerprint?: string; unverified?: true; signal?: AbortSignal } = {}): Promise<void> {
    if (member === this.memberKey) throw new BackchannelError('approval_invalid', 'a member cannot approve itself');
    if (this.role !== 'party') throw new BackchannelError('wrong_role', 'only parties approve members');
    await this.#mutex.run(async () => {
      await this.#sync(options.signal);
      if (this.#record.log.members[member] !== undefined) return; // already admitted: nothing to sign
      const p = this.#pending.find((x) => x.key === member);
      if (p === undefined) throw new BackchannelError('member_not_found', 'no such pending member');
      if (options.unverified !== true && normaliseFingerprint(options.fingerprint) !== normaliseFingerprint(p.fingerprint)) {
        throw new BackchannelError('not_verified', 'compare the pending member’s fingerprint (or approve with { unverified: true })');
      }
      this.#record = { ...this.#record, intents: { ...this.#record.intents, approve: { ...this.#record.intents.approve, [member]: p.signKey } } };
      await this.#save();
      await this.#proposeWithRetry(() => admissionFor(this.#record, this.#pending, p.seat), options.signal);
    });
  }

  /** Signs the removal of a member (every other party must; or the host alone where the charter allows). */
  async remove(member: string, options: { signal?: AbortSignal } = {}): Promise<void> {
    await this.#mutex.run(async () => {
      this.#record = { ...this.#record, intents: { ...this.#record.intents, remove: [...new Set([...this.#record.intents.remove, member])] } };
      await this.#save();
      await this.#proposeWithRetry(() => ({ kind: 'remove', member }), options.signal);
    });
  }

  /** Signs a new role for a member (every party must). */
  async setRole(member: string, role: 'party' | 'observer', options: { signal?: AbortSignal } = {}): Promise<void> {
    await this.#mutex.run(() => this.#proposeWithRetry(() => ({ kind: 'role', member, role }), options.signal));
  }

  /** Leaves the channel; local state is kept until `forget()`. */
  async leave(options: { signal?: AbortSignal } = {}): Promise<void> {
    await this.#mutex.run(() => this.#proposeWithRetry(() => ({ kind: 'leave', member: this.memberKey }), options.signal));
    if (!this.#ended) {
      this.#ended = true;
      this.#events.emit('ended', 'left');
    }
    await this.close();
  }

  /** Dissolves the channel for everyone, irreversibly, and deletes this member's channel state. */
  async dissolve(options: { signal?: AbortSignal } = {}): Promise<void> {
    await this.#mutex.run(() => this.#proposeWithRetry(() => ({ kind: 'dissolve' }), options.signal));
    await this.#mutex.run(() => this.#sync().catch(() => undefined));
    if (!this.#record.log.dissolved) throw new BackchannelError('unavailable', 'the dissolution was signed but the relay has not applied it yet');
  }

  /** Signs a new charter (applied once every party signed the same one). */
  async amendCharter(charter: CharterInput, options: { signal?: AbortSignal } = {}): Promise<void> {
    const purpose = charter.purpose === undefined || this.#record.purposeKey === null ? this.#record.log.charter.purpose : sealPurpose(charter.purpose, this.#record.purposeKey);
    const next = Charter.parse({ ...this.#record.log.charter, ...charter, purpose });
    await this.#mutex.run(() => this.#proposeWithRetry(() => ({ kind: 'charter', charter: next }), options.signal));
  }

  /** The safety number of this member and `member`, to compare out of band. */
  async safetyNumber(member: string): Promise<string> {
    const m = this.#record.log.members[member];
    if (m === undefined) throw new BackchannelError('not_verified', 'not a member of the verified group state');
    return safetyNumber({ key: this.memberKey, signKey: this.#record.group.self.signPublic }, { key: member, signKey: m.signKey });
  }

  /** Records that the user compared safety numbers (or fingerprints) with `member`. */
  async markVerified(member: string): Promise<void> {
    await this.#mutex.run(async () => {
      const m = this.#record.log.members[member];
      if (m === undefined) throw new BackchannelError('member_not_found', 'no such member');
      this.#record = { ...this.#record, verified: { ...this.#record.verified, [member]: m.signKey } };
      await this.#save();
    });
  }

  /**
   * (Party) Verifies the channel's formal log against this client's own fingerprint and co-signs
   * its head (a checkpoint), unless it fails verification or publishes a proposal this member
   * vetoed (then an alarm, `record_invalid`, and no signature). Done on every publication pushed;
   * call it to co-sign after a restart. Resolves with the head index co-signed, if any.
   */
  async cosignFormalLog(options: { signal?: AbortSignal } = {}): Promise<number | undefined> {
    if (this.role !== 'party') throw new BackchannelError('wrong_role', 'only parties co-sign the formal log');
    const outcome = await cosignHead(this.#conn, this.#record, options.signal);
    if ('refused' in outcome) this.#alarm({ code: 'record_invalid', message: outcome.refused });
    return 'index' in outcome ? outcome.index : undefined;
  }

  /** Deletes this member's local state of the channel (after leaving, say). */
  async forget(): Promise<void> {
    await this.close();
    await this.#store.delete(recordKey(this.id));
  }

  /** Stops: waits for in-flight sends to be acked (or `signal`), then closes the connection. */
  async close(signal?: AbortSignal): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe?.();
    if (this.#upkeepTimer !== undefined) this.#schedule.clearTimeout(this.#upkeepTimer);
    await this.#conn.close(signal);
  }

  /** Recipients: the parties of the verified state, never this member, a host, an observer, or a member it voted out. */
  #recipients(): string[] {
    if (this.#record.log.dissolved) return [];
    // A member this client signed the removal of gets nothing more, even before the removal lands.
    const votedOut = new Set(this.#record.intents.remove);
    return partiesOf(this.#record.log).filter((k) => k !== this.memberKey && !votedOut.has(k));
  }

  async #send(content: MessageContent, signal?: AbortSignal): Promise<Sent> {
    if (this.role !== 'party') throw new BackchannelError('wrong_role', 'only parties send messages');
    const clientMsgId = toBase64Url(sodium.randombytes_buf(12));
    const sealed = await this.#mutex.run(async () => {
      if (this.#closed || this.#record.log.dissolved) throw new BackchannelError('closed', 'this channel client is closed');
      if (this.#record.log.members[this.memberKey]?.role !== 'party') throw new BackchannelError('recipient_not_member', 'not (yet) a party of the verified group state');
      const recipients = this.#recipients();
      if (recipients.length === 0) throw new BackchannelError('recipient_not_member', 'no verified party to send to');
      let group = this.#record.group;
      for (const member of recipientsNeedingSession(group, recipients)) {
        const bundle = await this.#conn.request({ type: 'prekeys.fetch', channel: this.id, member }, signal ? { signal } : {});
        group = await startSession(group, bundle, this.#record.log.members[member]!.signKey);
        if (bundle.oneTimePrekey === null) {
          // Still usable, but the session's first chain rests on the signed prekey alone until the peer answers.
          this.#alarm({ code: 'one_time_prekey_missing', message: 'the relay handed out a bundle without a one-time prekey (stripped, or the member ran out): this session’s first messages have weaker forward secrecy', member });
        }
      }
      const plaintext = encodeContent(content);
      const log = this.#record.log;
      const out = await sealGroupMessage(group, { recipients, plaintext, clientMsgId, group: { epoch: log.epoch, stateHash: log.stateHash } });
      // Saved before it leaves: a crash never reuses a counter or a key, and the outbox re-sends it.
      this.#record = { ...this.#record, group: out.state, outbox: { ...this.#record.outbox, [clientMsgId]: out.message } };
      await this.#save();
      this.#openings.set(clientMsgId, { frankingKey: out.frankingKey, plaintext: toBase64Url(plaintext) });
      return out.message;
    });
    return this.#transmit(clientMsgId, sealed, signal);
  }

  async #transmit(clientMsgId: string, sealed: ChannelRecord['outbox'][string], signal?: AbortSignal): Promise<Sent> {
    const ack = await this.#conn.request({ type: 'send', channel: this.id, clientMsgId, ...sealed }, { retry: true, ...(signal ? { signal } : {}) });
    await this.#mutex.run(async () => {
      if (this.#record.log.dissolved) return;
      const recorded = recordReceipt(this.#record.group, ack.seq, ack.chain, { commitment: sealed.commitment, receivedAt: ack.receivedAt });
      const outbox = { ...this.#record.outbox };
      delete outbox[clientMsgId];
      // Our own message's commitment and authorship, as for a delivery: an excerpt of it is checked against them.
      const group = rememberDelivered(recorded.state, ack.seq, sealed.commitment);
      const authors = windowSet(this.#record.authors ?? [], ack.seq, this.memberKey, MAX_REMEMBERED_RECEIPTS);
      this.#record = { ...this.#record, group, authors, outbox };
      await this.#save();
      if (recorded.fork) this.#alarm({ code: 'integrity_fork', message: 'the relay acked our message with a chain that contradicts what it showed us', seq: ack.seq });
    });
    // After a restart the outbox re-sends without the opening (it was never persisted: secret).
    const opening = this.#openings.get(clientMsgId) ?? { frankingKey: '', plaintext: '' };
    this.#openings.delete(clientMsgId);
    return { seq: ack.seq, clientMsgId, receivedAt: ack.receivedAt, ...opening };
  }

  /** Whether `member` was a party at some verified epoch (the only members whose messages we open). */
  #knownParty(member: string): boolean {
    return Object.values(this.#record.epochs).some((e) => e.parties.includes(member));
  }

  /**
   * A delivery below our resume point that we never processed: the resume point was moved past
   * it by a delivery the relay numbered out of order. Raise the alarm, and open it anyway (it is
   * authenticated like any other), so nothing is lost to the jump.
   */
  async #deliverBelowResumePoint(frame: RelayFrameOf<'deliver'>): Promise<void> {
    const delivered = this.#record.group.delivered;
    const oldest = delivered[0]?.seqs[0];
    if (oldest === undefined || frame.seq < oldest || windowGet(delivered, frame.seq) !== undefined) return; // a duplicate (or too old to tell)
    this.#alarm({ code: 'integrity_gap', message: `a delivery at ${frame.seq}, below our resume point ${this.#record.lastSeq}: the relay numbered a message out of order`, member: frame.from, seq: frame.seq });
    await this.#deliver(frame, true);
  }

  /** Processes one delivery; false when it was refused (the cursor then stays where it was). */
  async #deliver(frame: RelayFrameOf<'deliver'>, belowResumePoint = false): Promise<boolean> {
    return this.#mutex.run(async () => {
      if (frame.seq <= this.#record.lastSeq && !belowResumePoint) return true;
      if (this.#record.log.dissolved) return false;
      if (!this.#knownParty(frame.from)) await this.#sync();
      if (!this.#knownParty(frame.from)) {
        this.#alarm({ code: 'integrity_roster', message: 'a message from a member the verified group log never made a party was refused', member: frame.from, seq: frame.seq });
        return false;
      }
      const result = await openGroupMessage(this.#record.group, {
        from: frame.from,
        header: frame.header,
        body: frame.body,
        commitment: frame.commitment,
        seq: frame.seq,
        chain: frame.chain,
        receivedAt: frame.receivedAt,
      });
      if (result.status === 'rejected') {
        this.#alarm({ code: result.error.code, message: result.error.message, member: frame.from, seq: frame.seq });
        return false;
      }
      const lastSeq = Math.max(this.#record.lastSeq, frame.seq);
      if (result.status === 'duplicate') {
        this.#record = { ...this.#record, lastSeq };
        await this.#save();
        return true;
      }
      const sentAt = result.message.group;
      if (sentAt.epoch > this.#record.log.epoch) await this.#sync();
      const refusal = senderStateRefusal(this.#record, frame.from, sentAt);
      if (refusal !== undefined) {
        this.#alarm({ ...refusal, member: frame.from, seq: frame.seq });
        return false;
      }
      // Skipped keys this message made are stamped now, and those past their age deleted.
      this.#record = { ...this.#record, group: expireSkippedKeysByAge(result.state, this.#schedule.now()), lastSeq };
      this.#armUpkeepTimer();
      await this.#replenishPrekeys();
      let content: MessageContent;
      try {
        content = decodeContent(result.message.plaintext);
      } catch (err) {
        await this.#save();
        this.#alarm({ code: 'decrypt_failed', message: err instanceof Error ? err.message : 'undecodable content', member: frame.from, seq: frame.seq });
        return true;
      }
      this.#record = { ...this.#record, authors: windowSet(this.#record.authors ?? [], frame.seq, frame.from, MAX_REMEMBERED_RECEIPTS) };
      if (content.kind === 'draft') {
        const held = this.#record.drafts?.[content.draft.proposalId];
        if (held !== undefined && held.author !== frame.from) {
          // Drafts are keyed by (author, id): another member's draft under the same id replaces nothing.
          await this.#save();
          this.#alarm({ code: 'draft_collision', message: 'a draft reuses the id of another member’s draft; the first one stays', member: frame.from, seq: frame.seq });
          return true;
        }
        this.#record = { ...this.#record, drafts: { ...this.#record.drafts, [content.draft.proposalId]: { ...content.draft, author: frame.from } } };
      }
      await this.#save();
      for (const a of result.alarms) this.#alarm({ code: a.code, message: a.message, member: frame.from, seq: frame.seq });
      const disappear = this.#record.log.charter.disappearSec;
      this.#events.emit('message', {
        from: frame.from,
        content,
        seq: frame.seq,
        receivedAt: frame.receivedAt,
        clientMsgId: result.message.clientMsgId,
        frankingKey: result.message.frankingKey,
        plaintext: toBase64Url(result.message.plaintext),
        expiresAt: disappear === null ? null : frame.receivedAt + disappear * 1000,
      });
      return true;
    });
  }

  async #onGroupPush(frame: RelayFrameOf<'group'>): Promise<void> {
    if (this.#ended || this.#closed) return;
    // The pushed entries are applied when they extend our state; pending members are taken in
    // either way (each verified); anything further is fetched.
    const result = await applyEntries(this.#record, frame.entries);
    await this.#absorb(result, frame.pending);
    if (result.refused === undefined && frame.head > this.#record.log.epoch) await this.#sync();
  }

  async #sync(signal?: AbortSignal): Promise<void> {
    if (this.#ended || this.#closed) return;
    const result = await catchUp(this.#conn, this.#record, signal);
    await this.#absorb(result, result.pending);
  }

  /** Takes in what following the log found: saves, reports, ends membership, re-signs intents. */
  async #absorb(result: SyncResult, pendingSeats: readonly Seat[]): Promise<void> {
    const before = this.#record.log;
    let record = result.record;
    const self = this.memberKey;
    for (const change of result.applied) {
      if (change.kind === 'remove' || change.kind === 'leave') record = { ...record, group: forgetPeer(record.group, change.member) };
      // Admitted (or made a party) after others spoke: take each sender's counter from its first message.
      const joinedLate = (change.kind === 'add' && change.member.key === self) || (change.kind === 'role' && change.member === self);
      if (joinedLate) record = { ...record, group: { ...record.group, adoptNewSenders: true } };
    }
    const landed = Object.keys(record.intents.approve).filter((k) => record.log.members[k] !== undefined);
    const gone = record.intents.remove.filter((k) => record.log.members[k] === undefined);
    if (landed.length > 0 || gone.length > 0) {
      const approve = { ...record.intents.approve };
      for (const k of landed) delete approve[k];
      record = { ...record, intents: { approve, remove: record.intents.remove.filter((k) => !gone.includes(k)) } };
    }
    this.#record = record;
    this.#pending = await verifyPending(record.log, pendingSeats);
    if (result.refused !== undefined) {
      const id = result.refused.entry;
      if (!this.#refused.has(id)) {
        this.#refused.add(id);
        this.#alarm({ code: 'integrity_group', message: `the relay served a group change that does not verify (${result.refused.error.code}: ${result.refused.error.message})` });
      }
    }
    if (record.log.dissolved) {
      await this.#dissolved();
      return;
    }
    await saveRecord(this.#store, record);
    if (before.members[self] !== undefined && record.log.members[self] === undefined) {
      const how = result.applied.some((c) => c.kind === 'leave' && c.member === self) ? 'left' : 'removed';
      if (!this.#ended) {
        this.#ended = true;
        this.#events.emit('ended', how);
      }
      void this.close();
      return;
    }
    if (record.log.members[self]?.role === 'party') {
      // An observer made a party publishes its first prekeys, so parties can start sessions with it.
      if (this.#record.group.prekeys.signed.length === 0) {
        this.#record = await publishFirstPrekeys(this.#conn, this.#record, (r) => saveRecord(this.#store, r), this.#schedule.now());
        this.#publishedSignedPrekey = this.#record.group.prekeys.signed[0]?.id;
      }
      await this.#upkeep();
      this.#subscribeOnce();
    }
    if (result.applied.length > 0 || pendingSeats.length > 0) this.#events.emit('group', this.group());
    for (const p of this.#awaitingMe()) {
      if (this.#announced.has(p.key)) continue;
      this.#announced.add(p.key);
      this.#events.emit('pending', p);
    }
    if (result.applied.length > 0) await this.#resignIntents();
  }

  /** Signs again, on the new state, the admissions and removals this member asked for that have not landed. */
  async #resignIntents(): Promise<void> {
    const record = this.#record;
    try {
      for (const [key, signKey] of Object.entries(record.intents.approve)) {
        const p = this.#pending.find((x) => x.key === key && x.signKey === signKey);
        if (p !== undefined) await proposeChange(this.#conn, this.#record, admissionFor(this.#record, this.#pending, p.seat));
      }
      for (const member of record.intents.remove) {
        if (this.#record.log.members[member] !== undefined) await proposeChange(this.#conn, this.#record, { kind: 'remove', member });
      }
    } catch (err) {
      // Another change landed first: the next push re-signs on that state.
      if (!BackchannelError.is(err, 'group_stale')) throw err;
    }
  }

  /** Proposes a change built on the verified state; if another change landed first, catches up and proposes again. */
  async #proposeWithRetry(build: () => GroupChange, signal?: AbortSignal): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      await this.#sync(signal);
      if (this.#record.log.dissolved) throw new BackchannelError('closed', 'the channel is dissolved');
      try {
        await proposeChange(this.#conn, this.#record, build(), signal);
      } catch (err) {
        if (!BackchannelError.is(err, 'group_stale') || attempt >= 4) throw err;
        continue;
      }
      // A change that ends our membership (leave, removal, dissolve) closes the connection right
      // after its entry is pushed: the push, not this read, then brings the entry.
      await this.#sync(signal).catch(() => undefined);
      return;
    }
  }

  async #replenishPrekeys(): Promise<void> {
    if (unusedOneTimePrekeys(this.#record.group.prekeys).length >= PREKEY_LOW) return;
    const more = await addOneTimePrekeys(this.#record.group.prekeys, PREKEY_TARGET);
    const spk = this.#record.group.prekeys.signed[0];
    this.#record = { ...this.#record, group: { ...this.#record.group, prekeys: more.state } };
    if (spk === undefined) return;
    // Saved first (the caller saves), then published: a key the relay hands out is always one we hold.
    void this.#save().then(() =>
      this.#conn.request({ type: 'prekeys.publish', channel: this.id, signedPrekey: { id: spk.id, key: spk.publicKey, sig: spk.sig }, oneTimePrekeys: more.published }),
    ).catch(() => undefined);
  }

  /**
   * Key upkeep: rotates the signed prekey when it is due, deletes retired ones past their grace
   * period and skipped message keys past their age, and (re)publishes the current signed prekey
   * if the relay has not confirmed it since this client started (a rotation whose publish failed,
   * or a crash between save and publish). Runs on every sync (connecting, group changes,
   * `refreshGroup`) and on a timer set for the next deadline.
   */
  async #upkeep(): Promise<void> {
    if (this.#closed || this.#record.log.members[this.memberKey]?.role !== 'party') return;
    const before = this.#record.group;
    const upkept = await upkeepPrekeys(before.prekeys, before.self, this.id, this.#schedule);
    const group = expireSkippedKeysByAge(upkept.prekeys === before.prekeys ? before : { ...before, prekeys: upkept.prekeys }, this.#schedule.now());
    if (group !== before) {
      this.#record = { ...this.#record, group };
      await this.#save(); // saved before it is published: a key the relay hands out is always one we hold
    }
    this.#armUpkeepTimer();
    const current = group.prekeys.signed[0];
    if (current === undefined || this.#publishedSignedPrekey === current.id) return;
    const signedPrekey = { id: current.id, key: current.publicKey, sig: current.sig };
    try {
      await this.#conn.request({ type: 'prekeys.publish', channel: this.id, signedPrekey, oneTimePrekeys: [] });
      this.#publishedSignedPrekey = current.id;
    } catch {
      // Offline or refused: the next sync publishes it again.
    }
  }

  #armUpkeepTimer(): void {
    if (this.#upkeepTimer !== undefined) this.#schedule.clearTimeout(this.#upkeepTimer);
    this.#upkeepTimer = undefined;
    const s = this.#schedule;
    const group = this.#record.group;
    const deadlines = [nextPrekeyDeadline(group.prekeys, s.everyMs, s.graceMs), nextSkippedKeyDeadline(group)].flatMap((d) => d ?? []);
    if (deadlines.length === 0 || this.#closed) return;
    const delay = Math.min(MAX_TIMER_MS, Math.max(0, Math.min(...deadlines) - s.now()));
    this.#upkeepTimer = s.setTimeout(() => {
      this.#upkeepTimer = undefined;
      void this.#mutex.run(() => this.#upkeep()).catch(() => undefined);
    }, delay);
  }

  #subscribeOnce(): void {
    if (this.#unsubscribe !== undefined || this.#closed) return;
    this.#unsubscribe = this.#conn.subscribe(this.id, {
      after: () => this.#record.lastSeq,
      deliver: (frame) => this.#deliver(frame),
      belowResumePoint: (frame) => this.#deliverBelowResumePoint(frame),
    });
  }

  /** The verified log says the channel is dissolved: delete the channel state, close. */
  async #dissolved(): Promise<void> {
    if (!this.#ended) {
      this.#ended = true;
      this.#events.emit('ended', 'dissolved');
    }
    this.#events.emit('group', this.group());
    await this.#store.delete(recordKey(this.id));
    void this.close();
  }

  /** Saves the record, unless the channel's dissolution was verified (its state is deleted for good). */
  async #save(): Promise<void> {
    if (!this.#record.log.dissolved) await saveRecord(this.#store, this.#record);
  }

  #alarm(alarm: ChannelAlarm): void {
    this.#events.emit('alarm', alarm);
  }
}

/** Fingerprints compare without their spacing. */
function normaliseFingerprint(f: string | undefined): string {
  return (f ?? '').replace(/\s+/g, '');
}
