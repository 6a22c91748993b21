import { verifyOpening } from '../crypto/franking.js';
import { signConsent } from '../crypto/signatures.js';
import { contentRange, disclosureContentHash } from '../formal/content-hash.js';
import { BackchannelError, fromBase64Url, toBase64Url, type DisclosureContent, type RelayFrameOf } from '../protocol/index.js';
import type { RelayConnection } from '../transport/relay-connection.js';
import type { Draft } from './content.js';

/** A proposal's state as the relay reports it. */
export type DisclosureState = RelayFrameOf<'disclosure'>;

/** What the desk needs from its channel client. */
export interface DeskHost {
  readonly channel: string;
  readonly signSecret: string;
  draft(proposalId: string): Draft | undefined;
  /** The verified group state consents are given in. */
  group(): { epoch: number; stateHash: string };
  /** The commitment of the message at `seq` as this member received (or sent) it. */
  received(seq: number): string | undefined;
  /** Who sent the message at `seq`, as this member's client authenticated it. */
  author(seq: number): string | undefined;
  /** Remembers a veto: this member never co-signs a formal log that publishes the proposal anyway. */
  vetoed(proposalId: string): Promise<void>;
}

/** An excerpt item as this member's client can vouch for it. */
export interface ReviewedItem {
  readonly seq: number;
  /** Opened in the excerpt (false: withheld). */
  readonly opened: boolean;
  /** Who wrote it, as this client authenticated it (undefined: never seen here). */
  readonly author: string | undefined;
  /** For an opened item: whether its opening matches the commitment this client received itself. */
  readonly matches: boolean;
}

/**
 * The staged-disclosure calls of one member: propose a draft the channel holds, consent after
 * checking the relay's proposal against the draft this member read, veto, withdraw, publish.
 */
export class DisclosureDesk {
  readonly #conn: RelayConnection;
  readonly #host: DeskHost;

  constructor(conn: RelayConnection, host: DeskHost) {
    this.#conn = conn;
    this.#host = host;
  }

  /** Proposes a draft: the relay learns its id and content hash, not its content. */
  propose(proposalId: string, options: { content?: DisclosureContent; releaseAt?: number; signal?: AbortSignal } = {}): Promise<DisclosureState> {
    const draft = this.#draftOrGiven(proposalId, options.content, options.releaseAt);
    return this.#conn.request(
      {
        type: 'disclosure.propose',
        channel: this.#host.channel,
        proposalId,
        kind: draft.content.kind,
        contentHash: toBase64Url(disclosureContentHash(draft.content)),
        ...contentRange(draft.content),
        releaseAt: draft.releaseAt,
      },
      options.signal ? { signal: options.signal } : {},
    );
  }

  /**
   * What an excerpt draft shows, item by item, checked against what this member's client itself
   * received: who wrote each item, and whether each opening matches the commitment it received.
   * Show this to the user before consenting.
   */
  review(proposalId: string): ReviewedItem[] {
    const draft = this.#draftOrGiven(proposalId);
    if (draft.content.kind !== 'excerpt') return [];
    return draft.content.items.map((item) => {
      const author = this.#host.author(item.seq);
      if (!('opened' in item)) return { seq: item.seq, opened: false, author, matches: true };
      const commitment = this.#host.received(item.seq);
      const plaintext = fromBase64Url(item.opened.plaintext);
      const frankingKey = fromBase64Url(item.opened.frankingKey);
      const matches = commitment !== undefined && plaintext !== undefined && frankingKey !== undefined && verifyOpening(fromBase64Url(commitment)!, frankingKey, plaintext);
      return { seq: item.seq, opened: true, author, matches };
    });
  }

  /**
   * Signs consent — only after checking that what the relay says was proposed (hash, kind,
   * range, release time) is exactly the draft this member read in the channel, and, for an
   * excerpt, that every opened item matches the commitment this member received itself
   * (`excerpt_mismatch` otherwise). The consent binds this member's verified group state.
   */
  async consent(proposalId: string, options: { signal?: AbortSignal } = {}): Promise<DisclosureState> {
    const draft = this.#draftOrGiven(proposalId);
    const state = await this.get(proposalId, options);
    const hash = toBase64Url(disclosureContentHash(draft.content));
    const range = contentRange(draft.content);
    if (state.contentHash !== hash || state.kind !== draft.content.kind || state.rangeFrom !== range.rangeFrom || state.rangeTo !== range.rangeTo || state.releaseAt !== draft.releaseAt) {
      throw new BackchannelError('content_mismatch', 'the proposal the relay holds is not the draft this member read');
    }
    const unverified = this.review(proposalId).find((i) => i.opened && !i.matches);
    if (unverified !== undefined) {
      throw new BackchannelError('excerpt_mismatch', `the excerpt's opening of seq ${unverified.seq} does not match what this member received`);
    }
    const group = this.#host.group();
    const sig = await signConsent(
      {
        channel: fromBase64Url(this.#host.channel)!,
        proposalId: fromBase64Url(proposalId)!,
        contentHash: fromBase64Url(hash)!,
        kind: draft.content.kind,
        ...range,
        releaseAt: draft.releaseAt,
        epoch: group.epoch,
        stateHash: group.stateHash,
      },
      this.#host.signSecret,
    );
    return this.#conn.request({ type: 'disclosure.consent', channel: this.#host.channel, proposalId, sig: toBase64Url(sig) }, options.signal ? { signal: options.signal } : {});
  }

  /**
   * Vetoes (any party), at any time before publication — during an embargo too. The veto is
   * remembered first: even a relay that ignores it and publishes cannot get this member's
   * co-signature on the formal log, so observers who require every party's see the dispute.
   */
  async veto(proposalId: string, options: { signal?: AbortSignal } = {}): Promise<DisclosureState> {
    await this.#host.vetoed(proposalId);
    return this.#conn.request({ type: 'disclosure.veto', channel: this.#host.channel, proposalId }, options.signal ? { signal: options.signal } : {});
  }

  /** Withdraws (the proposer), at any time before publication. */
  withdraw(proposalId: string, options: { signal?: AbortSignal } = {}): Promise<DisclosureState> {
    return this.#conn.request({ type: 'disclosure.withdraw', channel: this.#host.channel, proposalId }, options.signal ? { signal: options.signal } : {});
  }

  /** Submits the content of a consented proposal (the proposer, or the host given the content). */
  publish(proposalId: string, options: { content?: DisclosureContent; signal?: AbortSignal } = {}): Promise<DisclosureState> {
    const draft = this.#draftOrGiven(proposalId, options.content);
    return this.#conn.request({ type: 'disclosure.publish', channel: this.#host.channel, proposalId, content: draft.content }, options.signal ? { signal: options.signal } : {});
  }

  /** The proposal's state as the relay holds it. */
  get(proposalId: string, options: { signal?: AbortSignal } = {}): Promise<DisclosureState> {
    return this.#conn.request({ type: 'disclosure.get', channel: this.#host.channel, proposalId }, options.signal ? { signal: options.signal } : {});
  }

  #draftOrGiven(proposalId: string, content?: DisclosureContent, releaseAt?: number): Draft {
    const held = this.#host.draft(proposalId);
    if (content !== undefined) return { proposalId, content, releaseAt: releaseAt ?? held?.releaseAt ?? 0 };
    if (held === undefined) throw new BackchannelError('disclosure_not_found', 'this member holds no such draft');
    return held;
  }
}
