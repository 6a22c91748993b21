import { sodium, sodiumReady } from '@backchannel/client-sdk';
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

/** Retires the current key of a kind and creates a new one; old record keys stay published. */
export async function rotateRelayKey(db: Db, kind: 'auth' | 'record'): Promise<RelayKeyPair> {
  await sodiumReady();
  const kp = generate(kind);
  await db.kysely.transaction().execute(async (trx) => {
    await trx.updateTable('relay_keys').set({ retired_at: new Date() }).where('kind', '=', kind).where('retired_at', 'is', null).execute();
    await trx.insertInto('relay_keys').values({ kind, public_key: kp.publicKey, secret_key: kp.secretKey }).execute();
  });
  return kp;
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
