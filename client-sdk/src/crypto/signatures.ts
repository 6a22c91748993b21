/**
 * Signatures over governance statements: admission approvals and disclosure consents. With
 * signed prekeys these are the only things a member ever signs — message content never is, so
 * transcripts stay deniable. Each statement starts with its own label so a signature of one kind
 * can never be replayed as another.
 */
import { sodium, sodiumReady } from '../sodium.js';
import { bytesOf, concat, label, lp, u64be, type BytesLike } from './bytes.js';

const APPROVE_LABEL = label('backchannel/approve/v1');
const CONSENT_LABEL = label('backchannel/consent/v1');

/** What an approval covers: party `channel` admits `memberKey` with `memberSignKey` at `rosterVersion`. */
export interface ApprovalStatement {
  channel: BytesLike;
  memberKey: BytesLike;
  memberSignKey: BytesLike;
  rosterVersion: number;
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
}

/** The bytes an approval signature covers: label ‖ channel ‖ member ‖ signKey ‖ rosterVersion (8 B BE). */
export function approvalMessage(s: ApprovalStatement): Uint8Array {
  return concat(
    APPROVE_LABEL,
    bytesOf(s.channel, 16, 'channel'),
    bytesOf(s.memberKey, 32, 'member key'),
    bytesOf(s.memberSignKey, 32, 'member sign key'),
    u64be(s.rosterVersion),
  );
}

/**
 * The bytes a consent signature covers: label ‖ channel ‖ lp(proposalId) ‖
 * contentHash (32) ‖ lp(kind) ‖ rangeFrom ‖ rangeTo ‖ releaseAt (each 8 B BE). Variable-length
 * parts are length-prefixed so no two statements share an encoding.
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
  );
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

/** Signs an admission approval with the approving party's per-channel sign secret. */
export function signApproval(s: ApprovalStatement, signSecret: BytesLike): Promise<Uint8Array> {
  return sign(approvalMessage(s), signSecret);
}

/** Verifies an admission approval against the approving party's sign key. */
export function verifyApproval(s: ApprovalStatement, sig: BytesLike, signKey: BytesLike): Promise<boolean> {
  return verify(approvalMessage(s), sig, signKey);
}

/** Signs a disclosure consent with the consenting party's per-channel sign secret. */
export function signConsent(s: ConsentStatement, signSecret: BytesLike): Promise<Uint8Array> {
  return sign(consentMessage(s), signSecret);
}

/** Verifies a disclosure consent against the consenting party's sign key. */
export function verifyConsent(s: ConsentStatement, sig: BytesLike, signKey: BytesLike): Promise<boolean> {
  return verify(consentMessage(s), sig, signKey);
}
