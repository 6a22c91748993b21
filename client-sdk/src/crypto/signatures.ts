/**
 * Signatures over governance statements: group-log changes (genesis, founding, admissions,
 * removals, leaves, role changes, charter amendments, dissolution), invitations and their
 * redemption, and disclosure consents. With signed prekeys these are the only things a member
 * ever signs — message content never is, so transcripts stay deniable. Each statement starts with
 * its own label so a signature of one kind can never be replayed as another.
 */
import { sodium, sodiumReady } from '../sodium.js';
import { bytesOf, concat, label, lp, u64be, type BytesLike } from './bytes.js';

const GROUP_LABEL = label('backchannel/group/v1');
const GRANT_LABEL = label('backchannel/invite-grant/v1');
const REDEEM_LABEL = label('backchannel/redeem/v1');
const CONSENT_LABEL = label('backchannel/consent/v2');
const CHECKPOINT_LABEL = label('backchannel/checkpoint/v1');
const HANDOVER_LABEL = label('backchannel/relay-key-handover/v1');

/** A group-log change: channel, the epoch it creates, the state hash it builds on, the change. */
export interface GroupStatement {
  channel: BytesLike;
  epoch: number;
  prev: BytesLike;
  /** The change's canonical encoding (see `canonicalJson`). */
  change: Uint8Array;
}

/** An invitation the host issues: its public key, the role it admits and its expiry. */
export interface GrantStatement {
  channel: BytesLike;
  inviteKey: BytesLike;
  role: string;
  expiresAt: number;
}

/** An invitee's redemption: the invitation's key vouches for the member's two keys. */
export interface RedeemStatement {
  channel: BytesLike;
  inviteKey: BytesLike;
  memberKey: BytesLike;
  memberSignKey: BytesLike;
}

/** A party's co-signature of the formal log's head: its index and hash, in the party's verified group state. */
export interface CheckpointStatement {
  channel: BytesLike;
  index: number;
  hash: BytesLike;
  epoch: number;
  stateHash: BytesLike;
}

/** A relay record key handing over to the next: signed by the retiring key. */
export interface HandoverStatement {
  from: BytesLike;
  to: BytesLike;
  /** When the new key takes over (ms since the epoch): the old one signs nothing dated later. */
  validFrom: number;
}

/** What a disclosure consent covers. `kind` is e.g. "excerpt" or "communique". */
export interface ConsentStatement {
  channel: BytesLike;
  proposalId: BytesLike;
  contentHash: BytesLike;
  kind: string;
  /** First sequence number of an excerpt (0 for a communiqué). */
  rangeFrom: number;
  /** Last sequence number of an excerpt (0 for a communiqué). */
  rangeTo: number;
  /** Earliest publication time in ms since the epoch (0 for no embargo). */
  releaseAt: number;
  /** The verified group state the consent is given in: its epoch and state hash. */
  epoch: number;
  stateHash: BytesLike;
}

/** The bytes a group change's signatures cover: label ‖ channel ‖ epoch (8 B BE) ‖ prev ‖ lp(change). */
export function groupMessage(s: GroupStatement): Uint8Array {
  return concat(GROUP_LABEL, bytesOf(s.channel, 16, 'channel'), u64be(s.epoch), bytesOf(s.prev, 32, 'prev'), lp(s.change));
}

/** The bytes the host's invitation signature covers: label ‖ channel ‖ invite key ‖ lp(role) ‖ expiresAt. */
export function grantMessage(s: GrantStatement): Uint8Array {
  return concat(GRANT_LABEL, bytesOf(s.channel, 16, 'channel'), bytesOf(s.inviteKey, 32, 'invite key'), lp(label(s.role)), u64be(s.expiresAt));
}

/** The bytes an invitation key signs on redemption: label ‖ channel ‖ invite key ‖ member key ‖ sign key. */
export function redeemMessage(s: RedeemStatement): Uint8Array {
  return concat(
    REDEEM_LABEL,
    bytesOf(s.channel, 16, 'channel'),
    bytesOf(s.inviteKey, 32, 'invite key'),
    bytesOf(s.memberKey, 32, 'member key'),
    bytesOf(s.memberSignKey, 32, 'member sign key'),
  );
}

/**
 * The bytes a consent signature covers: label ‖ channel ‖ lp(proposalId) ‖
 * contentHash (32) ‖ lp(kind) ‖ rangeFrom ‖ rangeTo ‖ releaseAt ‖ epoch (each 8 B BE) ‖
 * stateHash (32). Variable-length parts are length-prefixed so no two statements share an
 * encoding. The group state binds the consent to the parties of that state: a record is valid
 * only if every one of them consented in it.
 */
export function consentMessage(s: ConsentStatement): Uint8Array {
  return concat(
    CONSENT_LABEL,
    bytesOf(s.channel, 16, 'channel'),
    lp(bytesOf(s.proposalId)),
    bytesOf(s.contentHash, 32, 'content hash'),
    lp(label(s.kind)),
    u64be(s.rangeFrom),
    u64be(s.rangeTo),
    u64be(s.releaseAt),
    u64be(s.epoch),
    bytesOf(s.stateHash, 32, 'state hash'),
  );
}

/** The bytes a checkpoint signature covers: label ‖ channel ‖ index ‖ hash ‖ epoch ‖ stateHash. */
export function checkpointMessage(s: CheckpointStatement): Uint8Array {
  return concat(CHECKPOINT_LABEL, bytesOf(s.channel, 16, 'channel'), u64be(s.index), bytesOf(s.hash, 32, 'record hash'), u64be(s.epoch), bytesOf(s.stateHash, 32, 'state hash'));
}

/** The bytes a hand-over signature covers: label ‖ from ‖ to ‖ validFrom. */
export function handoverMessage(s: HandoverStatement): Uint8Array {
  return concat(HANDOVER_LABEL, bytesOf(s.from, 32, 'retiring key'), bytesOf(s.to, 32, 'new key'), u64be(s.validFrom));
}

async function sign(message: Uint8Array, signSecret: BytesLike): Promise<Uint8Array> {
  await sodiumReady();
  return sodium.crypto_sign_detached(message, bytesOf(signSecret, 64, 'sign secret'));
}

async function verify(message: Uint8Array, sig: BytesLike, signKey: BytesLike): Promise<boolean> {
  await sodiumReady();
  try {
    return sodium.crypto_sign_verify_detached(bytesOf(sig, 64), message, bytesOf(signKey, 32));
  } catch {
    return false;
  }
}

/** Signs a group-log change with a member's per-channel sign secret. */
export function signGroupChange(s: GroupStatement, signSecret: BytesLike): Promise<Uint8Array> {
  return sign(groupMessage(s), signSecret);
}

/** Verifies a signature over a group-log change. */
export function verifyGroupChange(s: GroupStatement, sig: BytesLike, signKey: BytesLike): Promise<boolean> {
  return verify(groupMessage(s), sig, signKey);
}

/** Signs an invitation with the host's per-channel sign secret. */
export function signGrant(s: GrantStatement, signSecret: BytesLike): Promise<Uint8Array> {
  return sign(grantMessage(s), signSecret);
}

/** Verifies the host's signature over an invitation. */
export function verifyGrant(s: GrantStatement, sig: BytesLike, signKey: BytesLike): Promise<boolean> {
  return verify(grantMessage(s), sig, signKey);
}

/** Signs a redemption with the invitation's secret key (derived from the link's secret). */
export function signRedeem(s: RedeemStatement, inviteSecret: BytesLike): Promise<Uint8Array> {
  return sign(redeemMessage(s), inviteSecret);
}

/** Verifies a redemption against the invitation's public key. */
export function verifyRedeem(s: RedeemStatement, sig: BytesLike, inviteKey: BytesLike): Promise<boolean> {
  return verify(redeemMessage(s), sig, inviteKey);
}

/** Signs a disclosure consent with the consenting party's per-channel sign secret. */
export function signConsent(s: ConsentStatement, signSecret: BytesLike): Promise<Uint8Array> {
  return sign(consentMessage(s), signSecret);
}

/** Verifies a disclosure consent against the consenting party's sign key. */
export function verifyConsent(s: ConsentStatement, sig: BytesLike, signKey: BytesLike): Promise<boolean> {
  return verify(consentMessage(s), sig, signKey);
}

/** Signs a checkpoint of the formal log's head with a party's per-channel sign secret. */
export function signCheckpoint(s: CheckpointStatement, signSecret: BytesLike): Promise<Uint8Array> {
  return sign(checkpointMessage(s), signSecret);
}

/** Verifies a party's checkpoint signature. */
export function verifyCheckpoint(s: CheckpointStatement, sig: BytesLike, signKey: BytesLike): Promise<boolean> {
  return verify(checkpointMessage(s), sig, signKey);
}

/** Verifies a relay record key's hand-over signature (by the retiring key). */
export function verifyHandover(s: HandoverStatement, sig: BytesLike): Promise<boolean> {
  return verify(handoverMessage(s), sig, s.from);
}
