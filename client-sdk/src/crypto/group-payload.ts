/**
 * @internal The plaintext of a group message's per-recipient header (what travels inside the
 * pairwise ratchet), in a compact binary form:
 *
 *   version u8 (=2) ‖ k_m 32 ‖ bodyHash 32 ‖ k_f 32 ‖ len u8 ‖ clientMsgId (ASCII) ‖
 *   counter u64 ‖ transcript 32 ‖ groupEpoch u32 ‖ groupState 32 ‖
 *   hasReceipt u8 ‖ [receiptSeq u64 ‖ receiptChain 32]
 *
 * `groupEpoch` and `groupState` are the sender's verified group state (epoch and state hash):
 * a recipient at the same epoch with another hash has found a fork; one behind catches up first.
 * At most 280 bytes (a 64-character message id); the envelope pads it to 320, so every header is 514 bytes.
 */
import { BackchannelError, PROTOCOL_VERSION, fromUtf8, utf8 } from '../protocol/index.js';
import { ByteReader, concat, u32be, u64be } from './bytes.js';

/** A receipt the sender had seen last: relay sequence and the chain value after it. */
export interface ReceiptRef {
  seq: number;
  chain: string;
}

/** @internal Decoded header payload. */
export interface GroupPayload {
  messageKey: Uint8Array;
  bodyHash: Uint8Array;
  frankingKey: Uint8Array;
  clientMsgId: string;
  counter: number;
  transcript: Uint8Array;
  groupEpoch: number;
  groupState: Uint8Array;
  lastReceipt: { seq: number; chain: Uint8Array } | null;
}

/** @internal */
export function encodeGroupPayload(p: GroupPayload): Uint8Array {
  const id = utf8(p.clientMsgId);
  if (id.length === 0 || id.length > 255) throw new RangeError('client message id length');
  return concat(
    Uint8Array.of(PROTOCOL_VERSION),
    p.messageKey,
    p.bodyHash,
    p.frankingKey,
    Uint8Array.of(id.length),
    id,
    u64be(p.counter),
    p.transcript,
    u32be(p.groupEpoch),
    p.groupState,
    p.lastReceipt === null ? Uint8Array.of(0) : concat(Uint8Array.of(1), u64be(p.lastReceipt.seq), p.lastReceipt.chain),
  );
}

/** @internal Malformed payloads fail with `decrypt_failed`. */
export function decodeGroupPayload(bytes: Uint8Array): GroupPayload {
  const r = new ByteReader(bytes, 'decrypt_failed');
  if (r.u8() !== PROTOCOL_VERSION) throw new BackchannelError('decrypt_failed', 'unknown header payload version');
  const messageKey = r.take(32).slice();
  const bodyHash = r.take(32).slice();
  const frankingKey = r.take(32).slice();
  let clientMsgId: string;
  try {
    clientMsgId = fromUtf8(r.take(r.u8()));
  } catch (cause) {
    throw new BackchannelError('decrypt_failed', 'bad client message id', { cause });
  }
  const counter = r.u64();
  const transcript = r.take(32).slice();
  const groupEpoch = r.u32();
  const groupState = r.take(32).slice();
  const flag = r.u8();
  let lastReceipt: GroupPayload['lastReceipt'] = null;
  if (flag === 1) lastReceipt = { seq: r.u64(), chain: r.take(32).slice() };
  else if (flag !== 0) throw new BackchannelError('decrypt_failed', 'bad receipt flag');
  r.end();
  return { messageKey, bodyHash, frankingKey, clientMsgId, counter, transcript, groupEpoch, groupState, lastReceipt };
}
