import type { RawData } from 'ws';
import type { Config } from './config.js';

/** What admission reads of the group-commit queue (the message log). */
export interface SendQueue {
  /** Sends waiting for a batch (not counting the one committing). */
  readonly waiting: number;
  /** Most sends one batch takes. */
  readonly batchLimit: number;
  /** How long the oldest waiting send has waited, in ms (0 when none waits). */
  oldestWaitMs(now: number): number;
}

/** The bounds admission enforces (BACKCHANNEL_MAX_QUEUE_DELAY_MS, BACKCHANNEL_MAX_PENDING_SENDS). */
export interface AdmissionLimits {
  readonly maxDelayMs: number;
  readonly maxPending: number;
}

/** The relay's admission bounds, from its configuration. */
export function admissionLimits(config: Config): AdmissionLimits {
  return { maxDelayMs: config.BACKCHANNEL_MAX_QUEUE_DELAY_MS, maxPending: config.BACKCHANNEL_MAX_PENDING_SENDS };
}

/**
 * Admission of sends by queueing delay, the idea of CoDel (RFC 8289): a queue is judged by how
 * long its head has waited, not by how long it is. A send that still fits into the next batch
 * is always admitted: it costs no extra latency (it is committed by the next fsync, whenever that
 * is) and keeps the commit pipeline full, so goodput stays at capacity however slow the machine.
 * Beyond one batch, a send is admitted only while the oldest waiting send has waited less than
 * `maxDelayMs`: a queue that has stood longer than that is not absorbing a burst but growing
 * under overload, and every send it admits would wait longer. `maxPending` bounds memory.
 *
 * A fixed count (the earlier rule, 4,096 waiting sends) admitted a queue of ~8 batches whatever
 * they cost: on a starved machine that was seconds of waiting for every accepted send.
 */
export function refusesSend(queue: SendQueue, limits: AdmissionLimits, now: number = performance.now()): boolean {
  if (queue.waiting >= limits.maxPending) return true;
  return queue.waiting >= queue.batchLimit && queue.oldestWaitMs(now) > limits.maxDelayMs;
}

/** The `retryAfterMs` hint of an `overloaded` answer: by then the standing queue has drained or is refused again. */
export function retryAfterMs(limits: AdmissionLimits): number {
  return Math.max(1, Math.round(limits.maxDelayMs));
}

const SEND_PREFIX = Buffer.from('{"type":"send",');
const RID_KEY = Buffer.from('"rid":');
const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;

/**
 * The `rid` of a `send` frame read from its raw bytes, without decoding or parsing it: only for a
 * frame that starts `{"type":"send",` (as the SDK and JSON.stringify of a send write it) and has
 * one well-formed `"rid":<digits>`. Anything else is `undefined` and goes the full way (parse,
 * validation, the handler's own admission check). Under overload this lets the relay refuse a
 * send for the cost of two byte searches instead of a JSON parse and a schema check of ~1.4 KiB.
 *
 * The byte string `"rid":` cannot occur inside a JSON string value (its quote would end the
 * string); a key spelled to look like it only misleads the connection that wrote it.
 */
export function sendRidOf(data: RawData): number | undefined {
  if (!Buffer.isBuffer(data) || data.length < SEND_PREFIX.length || data.compare(SEND_PREFIX, 0, SEND_PREFIX.length, 0, SEND_PREFIX.length) !== 0) return undefined;
  const at = data.indexOf(RID_KEY, SEND_PREFIX.length);
  if (at < 0 || data.indexOf(RID_KEY, at + RID_KEY.length) >= 0) return undefined;
  let rid = 0;
  let i = at + RID_KEY.length;
  const start = i;
  for (; i < data.length && i - start <= 10; i++) {
    const b = data[i]!;
    if (b < DIGIT_0 || b > DIGIT_9) break;
    rid = rid * 10 + (b - DIGIT_0);
  }
  const end = data[i];
  if (i === start || i - start > 10 || (end !== 0x2c && end !== 0x7d) || (i - start > 1 && data[start] === DIGIT_0)) return undefined;
  return rid <= 0xffff_ffff ? rid : undefined;
}

/** The `overloaded` error frame for a refused send, serialised without `JSON.stringify`. */
export function overloadedFrame(rid: number, retryAfter: number): string {
  return `{"type":"error","rid":${rid},"code":"overloaded","message":"the relay is at capacity; retry","retryAfterMs":${retryAfter}}`;
}
