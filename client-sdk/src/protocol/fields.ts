import { z } from 'zod';
import { LIMITS } from './limits.js';

const BASE64URL = /^[A-Za-z0-9_-]*$/;

/** Length in characters of `n` bytes as unpadded base64url. */
export function base64UrlLength(n: number): number {
  return Math.ceil((n * 4) / 3);
}

/** Opaque bytes of at most `maxBytes`, as unpadded base64url. */
export function bytesField(maxBytes: number) {
  return z.string().max(base64UrlLength(maxBytes)).regex(BASE64URL, 'not base64url');
}

/** Exactly `n` bytes, as unpadded base64url. */
export function fixedBytesField(n: number) {
  return z.string().length(base64UrlLength(n)).regex(BASE64URL, 'not base64url');
}

/** A member's per-channel X25519 public key: its address in the channel and its relay login. */
export const MemberKey = fixedBytesField(32);
/** A member's per-channel Ed25519 public key: signs prekeys, approvals and consents, nothing else. */
export const SignKey = fixedBytesField(32);
/** An Ed25519 signature. */
export const Signature = fixedBytesField(64);
/** A 32-byte hash or commitment. */
export const Hash32 = fixedBytesField(32);
/** A channel id: 16 random bytes chosen by the relay. */
export const ChannelId = fixedBytesField(16);
/** A relay-assigned, gap-free channel sequence number (starts at 1). */
export const Seq = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
/** A request id chosen by the client; the relay echoes it in the answer. */
export const RequestId = z.number().int().min(0).max(0xffff_ffff);
/** Milliseconds since the Unix epoch. */
export const Timestamp = z.number().int().min(0).max(8.64e15);
/** The client's id for a message, unique per (channel, sender): makes retries idempotent. */
export const ClientMessageId = z
  .string()
  .min(1)
  .max(LIMITS.maxClientMessageIdLength)
  .regex(/^[A-Za-z0-9_-]+$/, 'not a client message id');

/** Member roles. A host convenes and moderates; only parties read and write messages. */
export const Role = z.enum(['host', 'party', 'observer']);
/** Member status in a channel's roster. */
export const MemberStatus = z.enum(['pending', 'active', 'left', 'removed']);
