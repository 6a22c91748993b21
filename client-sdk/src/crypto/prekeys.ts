/**
 * Prekeys: what the relay stores so a member can be reached while offline. One signed prekey
 * (X25519, signed by the member's Ed25519 key — the signature covers the prekey and its context,
 * never content) and a pool of one-time prekeys, each handed out at most once.
 *
 * The secrets live in a {@link PrekeyState} the caller persists; one-time secrets are deleted
 * when used (forward secrecy, and an initial message can never be processed twice).
 */
import type { z } from 'zod';
import type { OneTimePrekey, SignedPrekey } from '../protocol/index.js';
import { sodium, sodiumReady } from '../sodium.js';
import { b64, bytesOf, concat, label, u32be, type BytesLike } from './bytes.js';
import type { MemberKeys } from './member-keys.js';

/** A signed prekey as published (`{id, key, sig}`, base64url). */
export type PublishedSignedPrekey = z.infer<typeof SignedPrekey>;
/** A one-time prekey as published (`{id, key}`, base64url). */
export type PublishedOneTimePrekey = z.infer<typeof OneTimePrekey>;

/** An X25519 prekey pair, persisted as base64url. */
export interface PrekeyPair {
  id: number;
  publicKey: string;
  secretKey: string;
}

/** A signed prekey pair with its signature, so it can be re-published unchanged. */
export interface SignedPrekeyPair extends PrekeyPair {
  sig: string;
  /** When it was made (ms since the epoch); absent in states saved before rotation was scheduled. */
  createdAt?: number;
  /** When a newer one replaced it: its grace period runs from here. */
  retiredAt?: number;
}

/**
 * A member's prekey secrets for one channel. Retired signed prekeys are kept for a grace period
 * (and at most {@link MAX_OLD_SIGNED_PREKEYS} of them) because bundles fetched before a rotation
 * may still be in use; then their secrets are deleted, so a device seized later cannot open a
 * first message sent to them.
 */
export interface PrekeyState {
  signed: SignedPrekeyPair[];
  oneTime: Record<string, PrekeyPair>;
  nextSignedId: number;
  nextOneTimeId: number;
}

/** Retired signed prekeys retained at most, whatever their grace period (the newest first). */
export const MAX_OLD_SIGNED_PREKEYS = 3;

const PREKEY_LABEL = label('backchannel/prekey/v1');

/** The exact bytes a signed prekey's signature covers. */
export function signedPrekeyMessage(
  channel: BytesLike,
  memberKey: BytesLike,
  prekeyId: number,
  prekey: BytesLike,
): Uint8Array {
  return concat(
    PREKEY_LABEL,
    bytesOf(channel, 16, 'channel'),
    bytesOf(memberKey, 32, 'member key'),
    u32be(prekeyId),
    bytesOf(prekey, 32, 'prekey'),
  );
}

/** An empty prekey state. */
export function createPrekeyState(): PrekeyState {
  return { signed: [], oneTime: {}, nextSignedId: 1, nextOneTimeId: 1 };
}

/**
 * Makes a new signed prekey at time `now` and returns the new state (the input is not modified)
 * and what to publish; the previous ones are marked retired at `now`. Call on joining and then
 * on a schedule (see {@link signedPrekeyDue}), and drop retired secrets with
 * {@link dropRetiredSignedPrekeys}.
 */
export async function rotateSignedPrekey(
  state: PrekeyState,
  keys: MemberKeys,
  channel: BytesLike,
  now: number,
): Promise<{ state: PrekeyState; published: PublishedSignedPrekey }> {
  await sodiumReady();
  const id = state.nextSignedId;
  const pair = sodium.crypto_box_keypair();
  const sig = sodium.crypto_sign_detached(
    signedPrekeyMessage(channel, keys.dhPublic, id, pair.publicKey),
    bytesOf(keys.signSecret, 64),
  );
  const entry: SignedPrekeyPair = { id, publicKey: b64(pair.publicKey), secretKey: b64(pair.privateKey), sig: b64(sig), createdAt: now };
  const retired = state.signed.map((s) => (s.retiredAt === undefined ? { ...s, retiredAt: now } : s));
  return {
    state: {
      ...state,
      signed: [entry, ...retired].slice(0, MAX_OLD_SIGNED_PREKEYS + 1),
      nextSignedId: id + 1,
    },
    published: { id, key: entry.publicKey, sig: b64(sig) },
  };
}

/**
 * Whether the current signed prekey is `everyMs` old at `now` (one made before rotation was
 * scheduled, with no creation time, is). False when there is none yet: the first is made on joining.
 */
export function signedPrekeyDue(state: PrekeyState, now: number, everyMs: number): boolean {
  const current = state.signed[0];
  if (current === undefined) return false;
  return current.createdAt === undefined || now - current.createdAt >= everyMs;
}

/** The state without the retired signed prekeys whose grace period (`graceMs` after retirement) is over at `now`. */
export function dropRetiredSignedPrekeys(state: PrekeyState, now: number, graceMs: number): PrekeyState {
  const [current, ...retired] = state.signed;
  if (current === undefined) return state;
  const kept = retired.filter((s) => s.retiredAt === undefined || now - s.retiredAt < graceMs);
  return kept.length === retired.length ? state : { ...state, signed: [current, ...kept] };
}

/**
 * When the prekey state next needs attention after `now`: the current signed prekey falls due,
 * or a retired one's grace period ends. Undefined when there is no signed prekey.
 */
export function nextPrekeyDeadline(state: PrekeyState, everyMs: number, graceMs: number): number | undefined {
  const [current, ...retired] = state.signed;
  if (current === undefined) return undefined;
  return Math.min((current.createdAt ?? 0) + everyMs, ...retired.flatMap((s) => (s.retiredAt === undefined ? [] : [s.retiredAt + graceMs])));
}

/** Adds `count` one-time prekeys; returns the new state and what to publish. */
export async function addOneTimePrekeys(
  state: PrekeyState,
  count: number,
): Promise<{ state: PrekeyState; published: PublishedOneTimePrekey[] }> {
  await sodiumReady();
  const oneTime = { ...state.oneTime };
  const published: PublishedOneTimePrekey[] = [];
  let id = state.nextOneTimeId;
  for (let i = 0; i < count; i++, id++) {
    const pair = sodium.crypto_box_keypair();
    oneTime[String(id)] = { id, publicKey: b64(pair.publicKey), secretKey: b64(pair.privateKey) };
    published.push({ id, key: b64(pair.publicKey) });
  }
  return { state: { ...state, oneTime, nextOneTimeId: id }, published };
}

/** The current (newest) signed prekey in its published form, if any — for re-publishing it. */
export function currentSignedPrekey(state: PrekeyState): PublishedSignedPrekey | undefined {
  const s = state.signed[0];
  return s && { id: s.id, key: s.publicKey, sig: s.sig };
}

/** The one-time prekeys still unused, in published form — e.g. to re-publish after a relay reset. */
export function unusedOneTimePrekeys(state: PrekeyState): PublishedOneTimePrekey[] {
  return Object.values(state.oneTime).map((p) => ({ id: p.id, key: p.publicKey }));
}

/**
 * Verifies a signed prekey against the member's sign key. The sign key must come from the
 * roster the client has verified, never from the relay's bundle alone.
 */
export async function verifySignedPrekey(
  signKey: BytesLike,
  channel: BytesLike,
  memberKey: BytesLike,
  prekey: PublishedSignedPrekey,
): Promise<boolean> {
  await sodiumReady();
  try {
    return sodium.crypto_sign_verify_detached(
      bytesOf(prekey.sig, 64),
      signedPrekeyMessage(channel, memberKey, prekey.id, prekey.key),
      bytesOf(signKey, 32),
    );
  } catch {
    return false;
  }
}
