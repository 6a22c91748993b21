/**
 * When a member's signed prekey rotates and when a retired one's secret is deleted. A retired
 * signed prekey still opens first messages of sessions started from a bundle fetched before the
 * rotation, for a grace period; after it the secret is gone, so a device seized later cannot
 * open a first message sent to it (forward secrecy for a session's first chain).
 */
import type { MemberKeys } from '../crypto/member-keys.js';
import {
  addOneTimePrekeys,
  dropRetiredSignedPrekeys,
  rotateSignedPrekey,
  signedPrekeyDue,
  type PrekeyState,
  type PublishedSignedPrekey,
} from '../crypto/prekeys.js';
import type { RelayConnection } from '../transport/relay-connection.js';
import { defaultClock, type Clock, type Platform } from '../transport/platform.js';
import type { ChannelRecord } from './channel-record.js';

/** How often the signed prekey rotates, and how long a retired one's secret is kept. */
export interface PrekeyRotation {
  /** Age at which the signed prekey is replaced, in ms (default 7 days). */
  readonly everyMs?: number;
  /**
   * How long a replaced signed prekey's secret is kept for sessions started from an older
   * bundle, in ms (default 7 days, the default retention: a first message the relay still holds
   * stays readable). A first message still unread after this cannot be opened any more.
   */
  readonly graceMs?: number;
}

/** A rotation schedule with its clock. */
export interface PrekeySchedule extends Clock {
  readonly everyMs: number;
  readonly graceMs: number;
}

const DAY_MS = 86_400_000;
export const DEFAULT_PREKEY_ROTATION = { everyMs: 7 * DAY_MS, graceMs: 7 * DAY_MS } as const;

/** One-time prekeys kept published; replenished when fewer remain. */
export const PREKEY_TARGET = 40;
export const PREKEY_LOW = 10;

/** The schedule for the given options; a RangeError unless both periods are positive. */
export function prekeySchedule(rotation: PrekeyRotation = {}, platform: Partial<Platform> = {}): PrekeySchedule {
  const everyMs = rotation.everyMs ?? DEFAULT_PREKEY_ROTATION.everyMs;
  const graceMs = rotation.graceMs ?? DEFAULT_PREKEY_ROTATION.graceMs;
  if (!(everyMs > 0) || !(graceMs > 0)) throw new RangeError('prekey rotation periods must be positive');
  return { ...defaultClock(platform), everyMs, graceMs };
}

/**
 * The prekey state at `now`: retired signed prekeys past their grace dropped, and a new signed
 * prekey when the current one is due (`published`: what to publish).
 */
export async function upkeepPrekeys(
  prekeys: PrekeyState,
  self: MemberKeys,
  channel: string,
  schedule: PrekeySchedule,
): Promise<{ prekeys: PrekeyState; published?: PublishedSignedPrekey }> {
  const now = schedule.now();
  const kept = dropRetiredSignedPrekeys(prekeys, now, schedule.graceMs);
  if (!signedPrekeyDue(kept, now, schedule.everyMs)) return { prekeys: kept };
  const rotated = await rotateSignedPrekey(kept, self, channel, now);
  return { prekeys: rotated.state, published: rotated.published };
}

/**
 * A new member's first prekeys: a signed prekey and one-time prekeys, saved (through `save`)
 * before they are published, so the relay never hands out a key this member does not hold.
 */
export async function publishFirstPrekeys(
  conn: RelayConnection,
  record: ChannelRecord,
  save: (record: ChannelRecord) => Promise<void>,
  now: number,
): Promise<ChannelRecord> {
  const rotated = await rotateSignedPrekey(record.group.prekeys, record.group.self, record.channel, now);
  const otks = await addOneTimePrekeys(rotated.state, PREKEY_TARGET);
  const next = { ...record, group: { ...record.group, prekeys: otks.state } };
  await save(next);
  await conn.request({ type: 'prekeys.publish', channel: record.channel, signedPrekey: rotated.published, oneTimePrekeys: otks.published });
  return next;
}
