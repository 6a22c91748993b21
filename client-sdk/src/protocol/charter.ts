import { z } from 'zod';
import { bytesField } from './fields.js';
import { LIMITS } from './limits.js';

/** A channel's charter, fixed at convening and changed only with every party's approval. */
export const Charter = z.strictObject({
  /** Purpose text, encrypted by the parties; opaque to the relay. */
  purpose: bytesField(LIMITS.maxPurposeBytes),
  /** Most members (host and observers included) the channel may hold. */
  memberCap: z.number().int().min(2).max(LIMITS.maxMembers).default(8),
  /** How long the relay keeps ciphertext, in seconds (default 7 days). */
  retentionSec: z.number().int().min(60).max(366 * 86_400).default(7 * 86_400),
  /** Client-side disappearing-message time in seconds, or null for none. */
  disappearSec: z.number().int().min(1).max(366 * 86_400).nullable().default(null),
  /** Who must consent before a disclosure is published. */
  disclosureRule: z.enum(['unanimous']).default('unanimous'),
  /** Whether the host may remove a member without every other party. */
  hostMayRemove: z.boolean().default(false),
});

/** A charter as sent (defaults applied). */
export type Charter = z.infer<typeof Charter>;
