/**
 * A relay that lies about state, for tests: the real relay behind a {@link startHostileProxy}
 * with per-member views. Each member can be served its own group log (entries withheld,
 * rewritten or invented, in answers to `group.get` and in pushes alike), have any frame to it
 * rewritten, held back, reordered or injected, and have any frame from it rewritten or dropped
 * before the real relay sees it. Everything clients sent is recorded, so a test can show what a
 * member was (never) encrypted to.
 */
import type { ClientFrame, ClientFrameOf, GroupEntry, RelayFrame, RelayFrameOf, Seat } from '@backchannel/client-sdk/protocol';
import { startHostileProxy, type HostileProxy, type Link } from './hostile-proxy.js';

/** A `group` frame (an answer to `group.get`, or a push). */
export type GroupFrame = RelayFrameOf<'group'>;

/**
 * Rewrites one `group` frame for one member. `from` is the epoch the member asked from
 * (`undefined` for a push). Return `undefined` to drop the frame.
 */
export type GroupRewrite = (frame: GroupFrame, from: number | undefined) => GroupFrame | undefined;

/** Rewrites a frame: return the frames to pass on (none drops it, several inject). */
export type FrameRule<F> = (frame: F, link: Link) => F[];

/** A member key, or a test on member keys (for members whose key is not known yet, like a newcomer). */
export type Who = string | ((member: string) => boolean);

/** Frames held back from a member until released. */
export interface Held {
  readonly frames: RelayFrame[];
  /** Stops holding, and passes the held frames on (in `order`, by default as they came). */
  release(order?: (frames: RelayFrame[]) => RelayFrame[]): void;
}

/** A running malicious relay. */
export interface MaliciousRelay {
  readonly url: string;
  readonly proxy: HostileProxy;
  /** Every frame clients sent (to the real relay, before any rewrite), by member. */
  readonly sent: HostileProxy['sent'];
  /** Serves `member` the group log as `rewrite` makes it; the returned function stops it. */
  viewFor(member: Who, rewrite: GroupRewrite): () => void;
  /** Rewrites every frame to `member`; the returned function stops it. */
  toMember(member: Who, rule: FrameRule<RelayFrame>): () => void;
  /** Rewrites every frame from `member` before the real relay sees it; the returned function stops it. */
  fromMember(member: Who, rule: FrameRule<ClientFrame>): () => void;
  /** The genuine entries of `channel`'s log the real relay sent anyone so far, by epoch. */
  logOf(channel: string): GroupEntry[];
  /** Holds back frames to `member` that `match`. */
  hold(member: string, match: (frame: RelayFrame) => boolean): Held;
  /** Pushes `frame` to `member`'s live sockets now, as if from the relay. */
  inject(member: string, frame: RelayFrame): void;
  /** Stops every view and rule. */
  reset(): void;
  /** The position in `sent` now, to look only at what came after. */
  mark(): number;
  /** `send` frames (since `since`) whose headers address `key`: something `key` could decrypt. */
  sendsTo(key: string, since?: number): ClientFrameOf<'send'>[];
  /** `prekeys.fetch` frames (since `since`) for `key`: a session being started with it. */
  fetchesFor(key: string, since?: number): ClientFrameOf<'prekeys.fetch'>[];
  /** Frames of one type that `member` sent (since `since`). */
  framesFrom<T extends ClientFrame['type']>(member: string, type: T, since?: number): ClientFrameOf<T>[];
  close(): Promise<void>;
}

interface Rule<F> {
  readonly who: (member: string) => boolean;
  readonly apply: FrameRule<F>;
}

const matcher = (who: Who): ((member: string) => boolean) => (typeof who === 'string' ? (m) => m === who : who);

/** Starts a malicious relay in front of the real relay at `upstream`. */
export async function startMaliciousRelay(upstream: string): Promise<MaliciousRelay> {
  const proxy = await startHostileProxy(upstream);
  const down: Rule<RelayFrame>[] = [];
  const up: Rule<ClientFrame>[] = [];
  /** The `from` of each member's outstanding `group.get`, by request id. */
  const asked = new Map<string, number>();
  /** Genuine log entries seen, by channel and epoch. */
  const seen = new Map<string, Map<number, GroupEntry>>();
  const add = <F>(list: Rule<F>[], rule: Rule<F>): (() => void) => {
    list.push(rule);
    return () => {
      const i = list.indexOf(rule);
      if (i >= 0) list.splice(i, 1);
    };
  };
  const through = <F>(list: readonly Rule<F>[], frame: F, link: Link): F[] =>
    list.filter((r) => r.who(link.member)).reduce<F[]>((frames, r) => frames.flatMap((f) => r.apply(f, link)), [frame]);

  proxy.tamper = {
    toRelay: (frame, link) => {
      if (frame.type === 'group.get') asked.set(`${link.member}/${frame.rid}`, frame.from);
      return through(up, frame, link);
    },
    toClient: (frame, link) => {
      if (frame.type === 'group') {
        const log = seen.get(frame.channel) ?? new Map<number, GroupEntry>();
        seen.set(frame.channel, log);
        for (const e of frame.entries) log.set(e.epoch, e);
      }
      return through(down, frame, link);
    },
  };

  const sends = (since: number): { member: string; frame: ClientFrameOf<'send'> }[] =>
    proxy.sent.slice(since).flatMap((s) => (s.frame.type === 'send' ? [{ member: s.member, frame: s.frame }] : []));

  const relay: MaliciousRelay = {
    url: proxy.url,
    proxy,
    sent: proxy.sent,
    viewFor: (member, rewrite) =>
      add(down, {
        who: matcher(member),
        apply: (frame, link) => {
          if (frame.type !== 'group') return [frame];
          const from = frame.rid === undefined ? undefined : asked.get(`${link.member}/${frame.rid}`);
          const out = rewrite(frame, from);
          return out === undefined ? [] : [out];
        },
      }),
    toMember: (member, apply) => add(down, { who: matcher(member), apply }),
    fromMember: (member, apply) => add(up, { who: matcher(member), apply }),
    logOf: (channel) => [...(seen.get(channel)?.values() ?? [])].sort((a, b) => a.epoch - b.epoch),
    hold: (member, match) => {
      const frames: RelayFrame[] = [];
      let link: Link | undefined;
      const stop = add(down, {
        who: matcher(member),
        apply: (frame, l) => {
          if (!match(frame)) return [frame];
          link = l;
          frames.push(frame);
          return [];
        },
      });
      return {
        frames,
        release: (order = (f) => f) => {
          stop();
          for (const f of order(frames)) link?.inject(f);
        },
      };
    },
    inject: (member, frame) => {
      const links = proxy.links(member);
      if (links.length === 0) throw new Error(`no live connection of ${member}`);
      for (const l of links) l.inject(frame);
    },
    reset: () => {
      down.length = 0;
      up.length = 0;
    },
    mark: () => proxy.sent.length,
    sendsTo: (key, since = 0) => sends(since).filter((s) => Object.hasOwn(s.frame.headers, key)).map((s) => s.frame),
    fetchesFor: (key, since = 0) =>
      proxy.sent.slice(since).flatMap((s) => (s.frame.type === 'prekeys.fetch' && s.frame.member === key ? [s.frame] : [])),
    framesFrom: <T extends ClientFrame['type']>(member: string, type: T, since = 0) =>
      proxy.sent.slice(since).flatMap((s) => (s.member === member && s.frame.type === type ? [s.frame as ClientFrameOf<T>] : [])),
    close: () => proxy.close(),
  };
  return relay;
}

// ------------------------------------------------------------------------------------------------
// Views: building blocks for `viewFor`.
// ------------------------------------------------------------------------------------------------

/** Hides every entry from `epoch` on: the member is kept on the state before it. */
export function withholdFrom(epoch: number): GroupRewrite {
  return (frame) => ({ ...frame, head: Math.min(frame.head, epoch - 1), entries: frame.entries.filter((e) => e.epoch < epoch) });
}

/**
 * Serves `forged` (consecutive entries) as the log's tail: the real entries before the first
 * forged epoch, then the forged ones. Pushes carry the forged entries.
 */
export function forgedTail(forged: readonly GroupEntry[]): GroupRewrite {
  const first = forged[0]!.epoch;
  const last = forged.at(-1)!.epoch;
  return (frame, from) => ({
    ...frame,
    head: Math.max(frame.head, last),
    entries: from === undefined ? [...forged] : [...frame.entries.filter((e) => e.epoch < first), ...forged.filter((e) => e.epoch >= from)],
  });
}

/** Rewrites every entry served. */
export function mapEntries(f: (entry: GroupEntry) => GroupEntry): GroupRewrite {
  return (frame) => ({ ...frame, entries: frame.entries.map(f) });
}

/** Rewrites every pending seat served. */
export function mapPending(f: (seat: Seat) => Seat): GroupRewrite {
  return (frame) => ({ ...frame, pending: frame.pending.map(f) });
}

/** A `group` push of `entries` (as the relay sends after a change) for `channel`. */
export function groupPush(channel: string, entries: readonly GroupEntry[], pending: readonly Seat[] = []): GroupFrame {
  return { type: 'group', channel, head: entries.at(-1)?.epoch ?? 0, entries: [...entries], pending: [...pending] };
}
