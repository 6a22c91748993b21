import { concat, label, lp, u32be, u64be } from '../crypto/bytes.js';
import { fromBase64Url, utf8, type DisclosureContent } from '../protocol/index.js';
import { sodium } from '../sodium.js';

const CONTENT_LABEL = label('backchannel/disclosure/v1');

/**
 * The hash every consent signs: BLAKE2b-256 over a length-prefixed encoding of the content, so
 * no two contents share one. A communiqué: its text. An excerpt: each item's sequence, whether
 * it is opened, and if so its plaintext and franking key.
 */
export function disclosureContentHash(content: DisclosureContent): Uint8Array {
  const parts: Uint8Array[] = [CONTENT_LABEL, lp(utf8(content.kind))];
  if (content.kind === 'communique') {
    parts.push(lp(utf8(content.text)));
  } else {
    parts.push(u32be(content.items.length));
    for (const item of content.items) {
      parts.push(u64be(item.seq));
      if ('opened' in item) {
        parts.push(new Uint8Array([1]), lp(fromBase64Url(item.opened.plaintext) ?? new Uint8Array()), fromBase64Url(item.opened.frankingKey) ?? new Uint8Array(32));
      } else {
        parts.push(new Uint8Array([0]));
      }
    }
  }
  return sodium.crypto_generichash(32, concat(...parts), null);
}

/** The excerpt range a content covers (0, 0 for a communiqué). */
export function contentRange(content: DisclosureContent): { rangeFrom: number; rangeTo: number } {
  if (content.kind === 'communique') return { rangeFrom: 0, rangeTo: 0 };
  const seqs = content.items.map((i) => i.seq);
  return { rangeFrom: Math.min(...seqs), rangeTo: Math.max(...seqs) };
}
