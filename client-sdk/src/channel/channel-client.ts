import { forgetPeer, recordReceipt } from '../crypto/group-state.js';
import { openGroupMessage, recipientsNeedingSession, sealGroupMessage, startSession } from '../crypto/group-message.js';
import { addOneTimePrekeys, rotateSignedPrekey, unusedOneTimePrekeys } from '../crypto/prekeys.js';
import { safetyNumber } from '../crypto/safety-number.js';
import { signApproval } from '../crypto/signatures.js';
import { inviteSecretHash, newInviteSecret } from '../invite.js';
import type { KeyStore } from '../keystore/key-store.js';
import {
  BackchannelError,
  fromBase64Url,
  toBase64Url,
  type Charter,
  type ErrorCode,
  type RelayFrameOf,
  type RosterMember,
} from '../protocol/index.js';
import { sodium } from '../sodium.js';
import type { RelayConnection } from '../transport/relay-connection.js';
import type { ConnectionState, StateChange } from '../transport/state.js';
import { recordKey, saveRecord, type ChannelRecord } from './channel-record.js';
import { decodeContent, encodeContent, type Draft, type MessageContent } from './content.js';
import { DisclosureDesk, type DisclosureState } from './disclosure-desk.js';
import { Emitter } from './emitter.js';
import { encodeInviteLink } from './invite-link.js';
import { Mutex } from './mutex.js';
import { openPurpose } from './purpose.js';
import { checkRoster } from './roster-trust.js';

/** One-time prekeys kept published; replenished when fewer remain. */
const PREKEY_TARGET = 40;
const PREKEY_LOW = 10;

/** A message the application receives: authenticated as from `from`, and seen once only. */
export interface ChannelMessage {
  readonly from: string;
  readonly content: MessageContent;
  readonly seq: number;
  readonly receivedAt: number;
  readonly clientMsgId: string;
  /** k_f: open this message in a disclosure excerpt with it. Keep it secret until then. */
  readonly frankingKey: string;
  /** The exact plaintext bytes (base64url) the commitment covers: with `frankingKey`, an excerpt opening. */
  readonly plaintext: string;
  /** When the charter sets disappearing messages: delete the message after this time. */
  readonly expiresAt: number | null;
}

/**
 * Something the SDK refused or found suspicious. Never silently accepted: a tampered, forged,
 * replayed, dropped or reordered message, a forked history, a member nobody approved.
 */
export interface ChannelAlarm {
  readonly code: ErrorCode;
  readonly message: string;
  readonly member?: string;
  readonly seq?: number;
}

/** A member as this client sees it, with what it could verify. */
export interface RosterView {
  readonly version: number;
  readonly status: 'forming' | 'open' | 'dissolved';
  readonly members: readonly (RosterMember & { readonly verified: boolean; readonly trusted: boolean })[];
}

/** Events of a {@link ChannelClient}. */
export interface ChannelEvents extends Record<string, unknown> {
  message: ChannelMessage;
  alarm: ChannelAlarm;
  roster: RosterView;
  /** Messages of ours the relay purged (retention) before every recipient had them. */
  expired: readonly string[];
  /** Our membership ended (left, removed, or the channel was dissolved); local state is gone if dissolved. */
  ended: 'left' | 'removed' | 'dissolved';
  state: StateChange;
  /** A disclosure proposal changed stage (pushed by the relay). */
  disclosure: DisclosureState;
}

/** What a send returns once the relay has durably stored the message. */
export interface Sent {
  readonly seq: number;
  readonly clientMsgId: string;
  readonly receivedAt: number;
  /** With `plaintext`, opens this message in a disclosure excerpt. */
  readonly frankingKey: string;
  readonly plaintext: string;
}

/**
 * One member's view of one channel: sending and receiving end-to-end encrypted messages,
 * verifying the roster, approving members, leaving. Created by `convene` or `join`.
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
  #roster: RelayFrameOf<'roster'> | undefined;
  #recipients: string[] = [];
  #unsubscribe: (() => void) | undefined;
  #closed = false;
  /** Staged disclosure: propose, consent, veto, withdraw, publish. */
  readonly disclosure: DisclosureDesk;

  /** @internal Use `convene` or `join`. */
  constructor(conn: RelayConnection, store: KeyStore, record: ChannelRecord) {
    this.#conn = conn;
    this.#store = store;
    this.#record = record;
    this.disclosure = new DisclosureDesk(conn, {
      channel: record.channel,
      signSecret: record.group.self.signSecret,
      draft: (id) => this.#record.drafts?.[id],
    });
    conn.onStateChange((change) => {
      this.#events.emit('state', change);
      if (change.to === 'open') void this.#mutex.run(() => this.#refreshRoster()).catch(() => undefined);
      if (change.to === 'closed' && change.reason === 'membership_ended') this.#events.emit('ended', 'removed');
    });
    conn.onPush((frame) => {
      if (frame.channel !== this.id) return;
      if (frame.type === 'roster') void this.#mutex.run(() => this.#applyRoster(frame)).catch(() => undefined);
      else if (frame.type === 'disclosure') this.#events.emit('disclosure', frame);
      else if (frame.type === 'expired') this.#events.emit('expired', frame.clientMsgIds);
      else void this.#dissolved();
    });
  }

  /** The channel id. */
  get id(): string {
    return this.#record.channel;
  }

  /** This member's key in the channel (its per-channel X25519 public key). */
  get memberKey(): string {
    return this.#record.group.self.dhPublic;
  }

  /** This member's role. */
  get role(): ChannelRecord['role'] {
    return this.#record.role;
  }

  /** The connection state. */
  get connectionState(): ConnectionState {
    return this.#conn.state;
  }

  /** The charter's purpose text, when this member holds its key. */
  get purpose(): string | undefined {
    const c = this.#record.charter;
    return c === null || this.#record.purposeKey === null ? undefined : openPurpose(c.purpose, this.#record.purposeKey);
  }

  /** Listens to an event; returns the function that stops listening. */
  on<K extends keyof ChannelEvents>(event: K, listener: (value: ChannelEvents[K]) => void): () => void {
    return this.#events.on(event, listener);
  }

  /** @internal Starts delivery and re-sends what a crash left unacknowledged. */
  async start(signal?: AbortSignal): Promise<void> {
    await this.#conn.connect(signal);
    await this.#mutex.run(() => this.#refreshRoster());
    for (const [clientMsgId, sealed] of Object.entries(this.#record.outbox)) void this.#transmit(clientMsgId, sealed).catch(() => undefined);
  }

  /** The roster as last verified. */
  roster(): RosterView | undefined {
    return this.#roster && this.#view(this.#roster);
  }

  /**
   * Resolves once this member is active (every party approved it, or, for founders, the channel
   * opened). Rejects with `aborted` when `signal` fires.
   */
  whenActive(signal?: AbortSignal): Promise<void> {
    const active = (view: RosterView | undefined): boolean => view?.members.some((m) => m.key === this.memberKey && m.status === 'active') ?? false;
    if (active(this.roster())) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const stop = this.on('roster', (view) => {
        if (!active(view)) return;
        stop();
        resolve();
      });
      signal?.addEventListener('abort', () => {
        stop();
        reject(new BackchannelError('aborted', 'aborted', { cause: signal.reason }));
      }, { once: true });
    });
  }

  /** Re-reads the roster from the relay and verifies it. */
  async refreshRoster(signal?: AbortSignal): Promise<RosterView> {
    await this.#mutex.run(() => this.#refreshRoster(signal));
    return this.roster()!;
  }

  /** Sends text to every verified party. Resolves once the relay has durably stored it. */
  sendText(text: string, options: { signal?: AbortSignal } = {}): Promise<Sent> {
    return this.#send({ kind: 'text', text }, options.signal);
  }

  /** Sends bytes to every verified party. Resolves once the relay has durably stored it. */
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
      this.#record = { ...this.#record, drafts: { ...this.#record.drafts, [proposalId]: draft } };
      await saveRecord(this.#store, this.#record);
    });
    return proposalId;
  }

  /** Disclosure drafts this member has read or written. */
  drafts(): Draft[] {
    return Object.values(this.#record.drafts ?? {});
  }

  /** (Host) Issues an invitation link; hand it to the invitee out of band. */
  async invite(options: { role?: 'party' | 'observer'; expiresInMs?: number; signal?: AbortSignal } = {}): Promise<string> {
    if (this.role !== 'host') throw new BackchannelError('wrong_role', 'only the host invites');
    const roster = await this.refreshRoster(options.signal);
    const secret = newInviteSecret();
    const role = options.role ?? 'party';
    await this.#conn.request(
      { type: 'invite.create', channel: this.id, secretHash: toBase64Url(inviteSecretHash(secret)), role, expiresAt: Date.now() + (options.expiresInMs ?? 86_400_000) },
      options,
    );
    return encodeInviteLink({
      relay: this.#record.relay,
      channel: this.id,
      secret: toBase64Url(secret),
      role,
      host: { key: this.memberKey, signKey: this.#record.group.self.signPublic },
      parties: roster.members.filter((m) => m.role === 'party' && m.status === 'active').map((m) => m.key),
      purposeKey: this.#record.purposeKey ?? toBase64Url(new Uint8Array(32)),
    });
  }

  /** (Party) Signs this member's approval of a pending member. */
  async approve(member: string, options: { signal?: AbortSignal } = {}): Promise<void> {
    const roster = await this.refreshRoster(options.signal);
    const entry = roster.members.find((m) => m.key === member && m.status === 'pending');
    if (entry === undefined) throw new BackchannelError('member_not_found', 'no such pending member');
    const sig = await signApproval(
      { channel: fromBase64Url(this.id)!, memberKey: fromBase64Url(entry.key)!, memberSignKey: fromBase64Url(entry.signKey)!, rosterVersion: entry.sinceVersion },
      this.#record.group.self.signSecret,
    );
    await this.#conn.request({ type: 'member.approve', channel: this.id, member, sig: toBase64Url(sig) }, options);
  }

  /** Votes to remove a member (or, as host where the charter allows, removes it). */
  async remove(member: string, options: { signal?: AbortSignal } = {}): Promise<void> {
    await this.#conn.request({ type: 'member.remove', channel: this.id, member }, options);
  }

  /** Leaves the channel; local state is kept until `forget()`. */
  async leave(options: { signal?: AbortSignal } = {}): Promise<void> {
    await this.#conn.request({ type: 'member.leave', channel: this.id }, options);
    this.#events.emit('ended', 'left');
  }

  /** Dissolves the channel for everyone, irreversibly, and deletes this member's channel state. */
  async dissolve(options: { signal?: AbortSignal } = {}): Promise<void> {
    await this.#conn.request({ type: 'channel.dissolve', channel: this.id }, options);
    await this.#dissolved();
  }

  /** Votes for a new charter (applied when every party voted for the same one). */
  async amendCharter(charter: Charter, options: { signal?: AbortSignal } = {}): Promise<void> {
    await this.#conn.request({ type: 'charter.amend', channel: this.id, charter }, options);
  }

  /** The safety number of this member and `member`, to compare out of band. */
  async safetyNumber(member: string): Promise<string> {
    const t = this.#record.trust.trusted[member];
    if (t === undefined) throw new BackchannelError('not_verified', 'not a verified member');
    return safetyNumber({ key: this.memberKey, signKey: this.#record.group.self.signPublic }, { key: member, signKey: t.signKey });
  }

  /**
   * Records that the user compared safety numbers with `member`. If its keys later change, this
   * client stops encrypting to it (`key_changed`) until it is verified again.
   */
  async markVerified(member: string): Promise<void> {
    await this.#mutex.run(async () => {
      const entry = this.#roster?.members.find((m) => m.key === member);
      if (entry === undefined) throw new BackchannelError('member_not_found', 'no such member');
      const trust = this.#record.trust;
      if (trust.flagged[member] === 'key_changed') {
        // Re-verification after a key change: accept the member's current keys again.
        const flagged = { ...trust.flagged };
        delete flagged[member];
        this.#record = { ...this.#record, trust: { ...trust, flagged, trusted: { ...trust.trusted, [member]: { signKey: entry.signKey, role: entry.role } } } };
      }
      this.#record = { ...this.#record, verified: { ...this.#record.verified, [member]: entry.signKey } };
      await saveRecord(this.#store, this.#record);
      if (this.#roster !== undefined) await this.#applyRoster(this.#roster);
    });
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
    await this.#conn.close(signal);
  }

  async #send(content: MessageContent, signal?: AbortSignal): Promise<Sent> {
    if (this.role !== 'party') throw new BackchannelError('wrong_role', 'only parties send messages');
    const clientMsgId = toBase64Url(sodium.randombytes_buf(12));
    const sealed = await this.#mutex.run(async () => {
      const recipients = this.#recipients;
      if (recipients.length === 0) throw new BackchannelError('recipient_not_member', 'no verified party to send to');
      let group = this.#record.group;
      for (const member of recipientsNeedingSession(group, recipients)) {
        const bundle = await this.#conn.request({ type: 'prekeys.fetch', channel: this.id, member }, signal ? { signal } : {});
        group = await startSession(group, bundle, this.#record.trust.trusted[member]!.signKey);
      }
      const plaintext = encodeContent(content);
      const out = await sealGroupMessage(group, { recipients, plaintext, clientMsgId });
      // Saved before it leaves: a crash never reuses a counter or a key, and the outbox re-sends it.
      this.#record = { ...this.#record, group: out.state, outbox: { ...this.#record.outbox, [clientMsgId]: out.message } };
      await saveRecord(this.#store, this.#record);
      this.#openings.set(clientMsgId, { frankingKey: out.frankingKey, plaintext: toBase64Url(plaintext) });
      return out.message;
    });
    return this.#transmit(clientMsgId, sealed, signal);
  }

  async #transmit(clientMsgId: string, sealed: ChannelRecord['outbox'][string], signal?: AbortSignal): Promise<Sent> {
    const ack = await this.#conn.request({ type: 'send', channel: this.id, clientMsgId, ...sealed }, { retry: true, ...(signal ? { signal } : {}) });
    await this.#mutex.run(async () => {
      const recorded = recordReceipt(this.#record.group, ack.seq, ack.chain, { commitment: sealed.commitment, receivedAt: ack.receivedAt });
      const outbox = { ...this.#record.outbox };
      delete outbox[clientMsgId];
      this.#record = { ...this.#record, group: recorded.state, outbox };
      await saveRecord(this.#store, this.#record);
      if (recorded.fork) this.#alarm({ code: 'integrity_fork', message: 'the relay acked our message with a chain that contradicts what it showed us', seq: ack.seq });
    });
    // After a restart the outbox re-sends without the opening (it was never persisted: secret).
    const opening = this.#openings.get(clientMsgId) ?? { frankingKey: '', plaintext: '' };
    this.#openings.delete(clientMsgId);
    return { seq: ack.seq, clientMsgId, receivedAt: ack.receivedAt, ...opening };
  }

  async #deliver(frame: RelayFrameOf<'deliver'>): Promise<void> {
    await this.#mutex.run(async () => {
      if (frame.seq <= this.#record.lastSeq) return;
      if (this.#record.trust.trusted[frame.from] === undefined) await this.#refreshRoster();
      const trusted = this.#record.trust.trusted[frame.from];
      if (trusted === undefined || trusted.role !== 'party') {
        this.#record = { ...this.#record, lastSeq: frame.seq };
        await saveRecord(this.#store, this.#record);
        this.#alarm({ code: 'integrity_roster', message: 'a message from a member this client has not verified was refused', member: frame.from, seq: frame.seq });
        return;
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
      this.#record = { ...this.#record, group: result.state, lastSeq: frame.seq };
      await this.#replenishPrekeys();
      await saveRecord(this.#store, this.#record);
      if (result.status === 'rejected') {
        this.#alarm({ code: result.error.code, message: result.error.message, member: frame.from, seq: frame.seq });
        return;
      }
      if (result.status === 'duplicate') return;
      let content: MessageContent;
      try {
        content = decodeContent(result.message.plaintext);
      } catch (err) {
        this.#alarm({ code: 'decrypt_failed', message: err instanceof Error ? err.message : 'undecodable content', member: frame.from, seq: frame.seq });
        return;
      }
      if (content.kind === 'draft') {
        this.#record = { ...this.#record, drafts: { ...this.#record.drafts, [content.draft.proposalId]: content.draft } };
        await saveRecord(this.#store, this.#record);
      }
      for (const a of result.alarms) this.#alarm({ code: a.code, message: a.message, member: frame.from, seq: frame.seq });
      const disappear = this.#record.charter?.disappearSec ?? null;
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
    });
  }

  async #refreshRoster(signal?: AbortSignal): Promise<void> {
    const roster = await this.#conn.request({ type: 'roster.get', channel: this.id }, signal ? { signal } : {});
    await this.#applyRoster(roster);
  }

  async #applyRoster(roster: RelayFrameOf<'roster'>): Promise<void> {
    if (this.#roster !== undefined && roster.version < this.#roster.version) return;
    const check = await checkRoster(this.#record.trust, this.id, this.memberKey, roster.members);
    let group = this.#record.group;
    for (const member of check.departed) group = forgetPeer(group, member);
    const blocked = (k: string): boolean => {
      const v = this.#record.verified[k];
      return v !== undefined && v !== check.trust.trusted[k]?.signKey;
    };
    this.#recipients = check.recipients.filter((k) => !blocked(k));
    this.#roster = roster;
    this.#record = { ...this.#record, group, trust: check.trust, charter: roster.charter };
    const me = roster.members.find((m) => m.key === this.memberKey);
    if (me?.status === 'active' && this.role === 'party') this.#subscribeOnce();
    await saveRecord(this.#store, this.#record);
    for (const a of check.alarms) this.#alarm({ code: a.code, message: a.message, member: a.member });
    this.#events.emit('roster', this.#view(roster));
  }

  async #replenishPrekeys(): Promise<void> {
    if (unusedOneTimePrekeys(this.#record.group.prekeys).length >= PREKEY_LOW) return;
    const more = await addOneTimePrekeys(this.#record.group.prekeys, PREKEY_TARGET);
    const spk = this.#record.group.prekeys.signed[0];
    this.#record = { ...this.#record, group: { ...this.#record.group, prekeys: more.state } };
    if (spk === undefined) return;
    // Saved first (the caller saves), then published: a key the relay hands out is always one we hold.
    void saveRecord(this.#store, this.#record).then(() =>
      this.#conn.request({ type: 'prekeys.publish', channel: this.id, signedPrekey: { id: spk.id, key: spk.publicKey, sig: spk.sig }, oneTimePrekeys: more.published }),
    ).catch(() => undefined);
  }

  #subscribeOnce(): void {
    if (this.#unsubscribe !== undefined || this.#closed) return;
    this.#unsubscribe = this.#conn.subscribe(this.id, {
      after: () => this.#record.lastSeq,
      deliver: (frame) => this.#deliver(frame),
    });
  }

  async #dissolved(): Promise<void> {
    this.#events.emit('ended', 'dissolved');
    await this.close();
    await this.#store.delete(recordKey(this.id));
  }

  #alarm(alarm: ChannelAlarm): void {
    this.#events.emit('alarm', alarm);
  }

  #view(roster: RelayFrameOf<'roster'>): RosterView {
    const trust = this.#record.trust;
    return {
      version: roster.version,
      status: roster.status,
      members: roster.members.map((m) => ({ ...m, trusted: trust.trusted[m.key] !== undefined, verified: this.#record.verified[m.key] === m.signKey })),
    };
  }
}

/**
 * A new member's first prekeys: a signed prekey and one-time prekeys, saved (through `save`)
 * before they are published, so the relay never hands out a key this member does not hold.
 */
export async function publishFirstPrekeys(conn: RelayConnection, record: ChannelRecord, save: (record: ChannelRecord) => Promise<void>): Promise<ChannelRecord> {
  const rotated = await rotateSignedPrekey(record.group.prekeys, record.group.self, record.channel);
  const otks = await addOneTimePrekeys(rotated.state, PREKEY_TARGET);
  const next = { ...record, group: { ...record.group, prekeys: otks.state } };
  await save(next);
  await conn.request({ type: 'prekeys.publish', channel: record.channel, signedPrekey: rotated.published, oneTimePrekeys: otks.published });
  return next;
}
