import { sql } from 'kysely';
import { handoverMessage, sodium, sodiumReady, type RelayKeyLink } from '@backchannel/client-sdk';
import { toBase64Url } from '@backchannel/client-sdk/protocol';
import type { Db } from '../db/connect.js';

/** A relay key pair of one kind. */
export interface RelayKeyPair {
  readonly publicKey: Uint8Array;
  readonly secretKey: Uint8Array;
}

/** The relay's keys: X25519 for authenticating members, Ed25519 for signing formal records. */
export interface RelayKeys {
  readonly auth: RelayKeyPair;
  readonly record: RelayKeyPair;
}

async function current(db: Db, kind: 'auth' | 'record'): Promise<RelayKeyPair | undefined> {
  const row = await db.kysely
    .selectFrom('relay_keys')
    .select(['public_key', 'secret_key'])
    .where('kind', '=', kind)
    .where('retired_at', 'is', null)
    .executeTakeFirst();
  return row && { publicKey: new Uint8Array(row.public_key), secretKey: new Uint8Array(row.secret_key) };
}

function generate(kind: 'auth' | 'record'): RelayKeyPair {
  const kp = kind === 'auth' ? sodium.crypto_box_keypair() : sodium.crypto_sign_keypair();
  return { publicKey: kp.publicKey, secretKey: kp.privateKey };
}

async function insert(db: Db, kind: 'auth' | 'record', kp: RelayKeyPair): Promise<void> {
  // The partial unique index makes concurrent first starts of several nodes agree on one key.
  await db.kysely
    .insertInto('relay_keys')
    .values({ kind, public_key: kp.publicKey, secret_key: kp.secretKey })
    .onConflict((oc) => oc.column('kind').where('retired_at', 'is', null).doNothing())
    .execute();
}

/** Loads the relay's current keys, generating each on first start. Shared by every relay node. */
export async function loadRelayKeys(db: Db): Promise<RelayKeys> {
  await sodiumReady();
  const out: Partial<Record<'auth' | 'record', RelayKeyPair>> = {};
  for (const kind of ['auth', 'record'] as const) {
    let kp = await current(db, kind);
    if (kp === undefined) {
      await insert(db, kind, generate(kind));
      kp = await current(db, kind);
    }
    if (kp === undefined) throw new Error(`relay ${kind} key could not be created`);
    out[kind] = kp;
  }
  return { auth: out.auth!, record: out.record! };
}

/**
 * Retires the current key of a kind and creates a new one; old record keys stay published. A
 * retiring record key signs the hand-over to the new one (the new key and when it takes over):
 * one of the relay's two signing sites, with its signature on formal records. Verifiers then
 * refuse a record a retired key signed after the hand-over.
 */
export async function rotateRelayKey(db: Db, kind: 'auth' | 'record'): Promise<RelayKeyPair> {
  await sodiumReady();
  const kp = generate(kind);
  await db.kysely.transaction().execute(async (trx) => {
    const old = await trx.selectFrom('relay_keys').select(['public_key', 'secret_key']).where('kind', '=', kind).where('retired_at', 'is', null).forUpdate().executeTakeFirst();
    const validFrom = Date.now();
    let handover: string | null = null;
    if (kind === 'record' && old !== undefined) {
      const sig = sodium.crypto_sign_detached(handoverMessage({ from: new Uint8Array(old.public_key), to: kp.publicKey, validFrom }), new Uint8Array(old.secret_key));
      handover = JSON.stringify({ from: toBase64Url(new Uint8Array(old.public_key)), validFrom, sig: toBase64Url(sig) });
    }
    await trx.updateTable('relay_keys').set({ retired_at: new Date(validFrom) }).where('kind', '=', kind).where('retired_at', 'is', null).execute();
    await trx.insertInto('relay_keys').values({ kind, public_key: kp.publicKey, secret_key: kp.secretKey, handover }).execute();
  });
  return kp;
}

/** The record keys, oldest first, each with the hand-over its predecessor signed. */
export async function recordKeyChain(db: Db): Promise<RelayKeyLink[]> {
  const rows = await db.kysely.selectFrom('relay_keys').select(['public_key', 'handover']).where('kind', '=', 'record').orderBy('id').execute();
  return rows.map((r) => ({ key: toBase64Url(new Uint8Array(r.public_key)), handover: (r.handover as RelayKeyLink['handover']) ?? null }));
}

/** Every record-signing public key the relay has used, newest first, for verifiers. */
export async function recordKeyHistory(db: Db): Promise<{ publicKey: Uint8Array; createdAt: Date; retiredAt: Date | null }[]> {
  const rows = await db.kysely
    .selectFrom('relay_keys')
    .select(['public_key', 'created_at', 'retired_at'])
    .where('kind', '=', 'record')
    .orderBy('id', 'desc')
    .execute();
  return rows.map((r) => ({ publicKey: new Uint8Array(r.public_key), createdAt: r.created_at, retiredAt: r.retired_at }));
}

/** Auth keys accepted now: the current one first, then those retired less than `graceMs` ago. */
async function acceptedAuthKeys(db: Db, graceMs: number): Promise<RelayKeyPair[]> {
  const rows = await db.kysely
    .selectFrom('relay_keys')
    .select(['public_key', 'secret_key'])
    .where('kind', '=', 'auth')
    .where((eb) => eb.or([eb('retired_at', 'is', null), eb('retired_at', '>', sql<Date>`now() - make_interval(secs => ${graceMs / 1000})`)]))
    .orderBy(sql`retired_at is not null`)
    .orderBy('id', 'desc')
    .execute();
  return rows.map((r) => ({ publicKey: new Uint8Array(r.public_key), secretKey: new Uint8Array(r.secret_key) }));
}

/**
 * The relay's keys as they are in the database now: `keys rotate` on any machine reaches every
 * node within BACKCHANNEL_KEY_RELOAD_MS, without a restart, and at once for a node that meets a
 * challenge issued under an auth key it does not hold yet ({@link reloadSoon}). Retired auth
 * keys stay accepted for BACKCHANNEL_AUTH_KEY_GRACE_MS, so challenges already handed out (by
 * this node or another) still verify.
 */
export class LiveRelayKeys implements RelayKeys {
  readonly #db: Db;
  readonly #graceMs: number;
  #auth: RelayKeyPair[];
  #record: RelayKeyPair;
  #timer: NodeJS.Timeout | undefined;
  #lastReload = 0;
  #reloading: Promise<boolean> | undefined;

  private constructor(db: Db, graceMs: number, auth: RelayKeyPair[], record: RelayKeyPair) {
    this.#db = db;
    this.#graceMs = graceMs;
    this.#auth = auth;
    this.#record = record;
  }

  /** Loads (generating on first start) the keys and starts re-reading them every `reloadMs`. */
  static async open(db: Db, graceMs: number, reloadMs: number): Promise<LiveRelayKeys> {
    const first = await loadRelayKeys(db);
    const keys = new LiveRelayKeys(db, graceMs, [first.auth], first.record);
    await keys.reload();
    keys.#timer = setInterval(() => void keys.reload().catch(() => undefined), reloadMs);
    keys.#timer.unref();
    return keys;
  }

  /** The current auth key: challenges are issued under it. */
  get auth(): RelayKeyPair {
    return this.#auth[0]!;
  }

  get record(): RelayKeyPair {
    return this.#record;
  }

  /** Every auth key a proof may answer: the current one first, then those in their grace period. */
  get acceptedAuth(): readonly RelayKeyPair[] {
    return this.#auth;
  }

  /** Re-reads the keys; true when the current auth or record key changed. */
  async reload(): Promise<boolean> {
    this.#lastReload = performance.now();
    const [auth, record] = await Promise.all([acceptedAuthKeys(this.#db, this.#graceMs), current(this.#db, 'record')]);
    if (auth.length === 0 || record === undefined) return false; // mid-rotation elsewhere: keep what we have
    const changed = !sodium.memcmp(auth[0]!.publicKey, this.auth.publicKey) || !sodium.memcmp(record.publicKey, this.#record.publicKey);
    this.#auth = auth;
    this.#record = record;
    return changed;
  }

  /**
   * Re-reads the keys now, or once a second has passed since the last reading (a client sending
   * nonces under unknown keys must not turn into database load: at most one query a second,
   * shared by every waiting upgrade); resolves true if anything changed.
   */
  reloadSoon(): Promise<boolean> {
    if (this.#reloading !== undefined) return this.#reloading;
    const wait = Math.max(0, this.#lastReload + 1_000 - performance.now());
    this.#reloading = new Promise((r) => setTimeout(r, wait)).then(() => this.reload()).finally(() => (this.#reloading = undefined));
    return this.#reloading;
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
