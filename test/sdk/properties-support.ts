export { forgeGroupMessage, join, openGroupMessage, reopen, type GroupState } from '@backchannel/client-sdk';

/** Plaintext of a text message as the SDK frames it (kind byte 1, then UTF-8). */
export function utf8ToContent(text: string): Uint8Array {
  const data = new TextEncoder().encode(text);
  const out = new Uint8Array(1 + data.length);
  out[0] = 1;
  out.set(data, 1);
  return out;
}
