/**
 * X3DH-style handshake over relay-stored prekeys, so a session can start while the recipient is
 * offline. Identity keys are the members' per-channel X25519 keys (IK); the responder's signed
 * prekey (SPK) is signed by its separate Ed25519 key, which the initiator checks first.
 *
 *   DH1 = DH(IK_a, SPK_b)  DH2 = DH(EK_a, IK_b)  DH3 = DH(EK_a, SPK_b)  [DH4 = DH(EK_a, OPK_b)]
 *   SK  = hkdf(0xFF^32 ‖ DH1 ‖ DH2 ‖ DH3 [‖ DH4] ‖ AD, salt 0^32, "backchannel/x3dh/v1")
 *   AD  = "backchannel/x3dh-ad/v1" ‖ channel ‖ IK_a ‖ IK_b
 *
 * AD is folded into SK (rather than only into each AEAD) so a session is bound to its channel
 * and both identities from its first key on.
 */
import { BackchannelError } from '../protocol/index.js';
import { sodium, sodiumReady } from '../sodium.js';
import { b64, bytesOf, concat, label, type BytesLike } from './bytes.js';
import { KDF_INFO_X3DH, hkdf } from './kdf.js';
import type { MemberKeys } from './member-keys.js';
import {
  verifySignedPrekey,
  type PrekeyPair,
  type PrekeyState,
  type PublishedOneTimePrekey,
  type PublishedSignedPrekey,
} from './prekeys.js';

/** A member's prekey bundle, as the relay's `prekeys.bundle` frame carries it. */
export interface PrekeyBundle {
  member: string;
  signKey: string;
  signedPrekey: PublishedSignedPrekey;
  oneTimePrekey: PublishedOneTimePrekey | null;
}

/** What an initiator's first messages carry in clear so the responder can run its half. */
export interface X3dhPrefix {
  /** Initiator identity key (its member key). */
  ik: string;
  /** Initiator ephemeral key. */
  ek: string;
  /** Responder signed prekey used. */
  spkId: number;
  /** Responder one-time prekey used, or null when the relay had none left. */
  opkId: number | null;
}

/** Result of the initiator's half. */
export interface X3dhInitiated {
  sharedSecret: Uint8Array;
  /** Responder's signed prekey: the initiator's first ratchet peer key. */
  theirRatchetKey: string;
  prefix: X3dhPrefix;
}

/** Result of the responder's half. `prekeys` has the used one-time prekey removed. */
export interface X3dhResponded {
  sharedSecret: Uint8Array;
  /** The signed prekey pair used: the responder's first ratchet key pair. */
  ourRatchetKey: PrekeyPair;
  prekeys: PrekeyState;
}

const AD_LABEL = label('backchannel/x3dh-ad/v1');
const FF = new Uint8Array(32).fill(0xff);

/** The handshake's associated data: label ‖ channel ‖ IK_initiator ‖ IK_responder. */
export function x3dhAssociatedData(channel: BytesLike, initiator: BytesLike, responder: BytesLike): Uint8Array {
  return concat(AD_LABEL, bytesOf(channel, 16, 'channel'), bytesOf(initiator, 32), bytesOf(responder, 32));
}

function dh(secret: Uint8Array, pub: Uint8Array): Uint8Array {
  // libsodium throws on an all-zero result (a low-order peer key): the handshake must fail then.
  return sodium.crypto_scalarmult(secret, pub);
}

function deriveSecret(dhs: Uint8Array[], ad: Uint8Array): Uint8Array {
  const ikm = concat(FF, ...dhs, ad);
  const sk = hkdf(ikm, new Uint8Array(0), KDF_INFO_X3DH, 32);
  ikm.fill(0);
  for (const d of dhs) d.fill(0);
  return sk;
}

/**
 * The initiator's half. `peerSignKey` must be the peer's sign key from the verified roster;
 * a bundle whose prekey signature does not verify under it is refused with
 * `prekey_signature_invalid` before any secret is computed.
 */
export async function x3dhInitiate(
  self: MemberKeys,
  channel: BytesLike,
  bundle: PrekeyBundle,
  peerSignKey: BytesLike,
): Promise<X3dhInitiated> {
  await sodiumReady();
  if (!(await verifySignedPrekey(peerSignKey, channel, bundle.member, bundle.signedPrekey))) {
    throw new BackchannelError('prekey_signature_invalid', 'signed prekey does not verify under the member sign key');
  }
  const ikB = bytesOf(bundle.member, 32, 'member key');
  const spkB = bytesOf(bundle.signedPrekey.key, 32, 'signed prekey');
  const ek = sodium.crypto_box_keypair();
  const ikA = bytesOf(self.dhSecret, 32);
  const dhs = [dh(ikA, spkB), dh(ek.privateKey, ikB), dh(ek.privateKey, spkB)];
  if (bundle.oneTimePrekey) dhs.push(dh(ek.privateKey, bytesOf(bundle.oneTimePrekey.key, 32, 'one-time prekey')));
  const sharedSecret = deriveSecret(dhs, x3dhAssociatedData(channel, self.dhPublic, ikB));
  ek.privateKey.fill(0);
  return {
    sharedSecret,
    theirRatchetKey: bundle.signedPrekey.key,
    prefix: {
      ik: self.dhPublic,
      ek: b64(ek.publicKey),
      spkId: bundle.signedPrekey.id,
      opkId: bundle.oneTimePrekey?.id ?? null,
    },
  };
}

/**
 * The responder's half. Fails with `decrypt_failed` when the prefix names a prekey this member
 * no longer has (rotated away or already used) — the only safe answer, since reusing a one-time
 * prekey would let an initial message be replayed into a second session.
 */
export async function x3dhRespond(
  self: MemberKeys,
  prekeys: PrekeyState,
  channel: BytesLike,
  prefix: X3dhPrefix,
): Promise<X3dhResponded> {
  await sodiumReady();
  const spk = prekeys.signed.find((p) => p.id === prefix.spkId);
  if (!spk) throw new BackchannelError('decrypt_failed', 'unknown signed prekey');
  const opk = prefix.opkId === null ? undefined : prekeys.oneTime[String(prefix.opkId)];
  if (prefix.opkId !== null && !opk) throw new BackchannelError('decrypt_failed', 'unknown or used one-time prekey');
  const ikA = bytesOf(prefix.ik, 32);
  const ekA = bytesOf(prefix.ek, 32);
  const spkSecret = bytesOf(spk.secretKey, 32);
  const ikB = bytesOf(self.dhSecret, 32);
  let dhs: Uint8Array[];
  try {
    dhs = [dh(spkSecret, ikA), dh(ikB, ekA), dh(spkSecret, ekA)];
    if (opk) dhs.push(dh(bytesOf(opk.secretKey, 32), ekA));
  } catch (cause) {
    throw new BackchannelError('decrypt_failed', 'handshake key is invalid', { cause });
  }
  const sharedSecret = deriveSecret(dhs, x3dhAssociatedData(channel, ikA, self.dhPublic));
  const oneTime = { ...prekeys.oneTime };
  if (prefix.opkId !== null) delete oneTime[String(prefix.opkId)];
  return { sharedSecret, ourRatchetKey: spk, prekeys: { ...prekeys, oneTime } };
}
