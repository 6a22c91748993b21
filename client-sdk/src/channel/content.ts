import { z } from 'zod';
import { BackchannelError, DisclosureContent, ProposalId, Timestamp, fromUtf8, utf8 } from '../protocol/index.js';

/** A disclosure draft: it lives encrypted inside the channel; the relay never sees it. */
export const Draft = z.strictObject({ proposalId: ProposalId, content: DisclosureContent, releaseAt: Timestamp });
/** A disclosure draft. */
export type Draft = z.infer<typeof Draft>;

/** What a message carries, inside the encryption. */
export type MessageContent = { kind: 'text'; text: string } | { kind: 'bytes'; bytes: Uint8Array } | { kind: 'draft'; draft: Draft };

const KIND_TEXT = 1;
const KIND_BYTES = 2;
const KIND_DRAFT = 3;

/** One kind byte, then the data: the smallest unambiguous framing. */
export function encodeContent(content: MessageContent): Uint8Array {
  const data = content.kind === 'text' ? utf8(content.text) : content.kind === 'bytes' ? content.bytes : utf8(JSON.stringify(content.draft));
  const out = new Uint8Array(1 + data.length);
  out[0] = content.kind === 'text' ? KIND_TEXT : content.kind === 'bytes' ? KIND_BYTES : KIND_DRAFT;
  out.set(data, 1);
  return out;
}

/** Decodes what {@link encodeContent} made; `decrypt_failed` for anything else. */
export function decodeContent(plaintext: Uint8Array): MessageContent {
  const data = plaintext.subarray(1);
  try {
    if (plaintext[0] === KIND_TEXT) return { kind: 'text', text: fromUtf8(data) };
  } catch (cause) {
    throw new BackchannelError('decrypt_failed', 'text content is not valid UTF-8', { cause });
  }
  if (plaintext[0] === KIND_BYTES) return { kind: 'bytes', bytes: data.slice() };
  if (plaintext[0] === KIND_DRAFT) {
    try {
      return { kind: 'draft', draft: Draft.parse(JSON.parse(fromUtf8(data))) };
    } catch (cause) {
      throw new BackchannelError('decrypt_failed', 'malformed disclosure draft', { cause });
    }
  }
  throw new BackchannelError('decrypt_failed', 'unknown content kind');
}
