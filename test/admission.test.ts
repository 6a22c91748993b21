import { describe, expect, it } from 'vitest';
import { overloadedFrame, refusesSend, sendRidOf, type SendQueue } from '../server/src/admission.js';
import { RelayFrame } from '@backchannel/client-sdk/protocol';

const queue = (waiting: number, oldestWaitMs: number): SendQueue => ({ waiting, batchLimit: 512, oldestWaitMs: () => oldestWaitMs });
const limits = { maxDelayMs: 50, maxPending: 4096 };
const bytes = (s: string): Buffer => Buffer.from(s);

describe('send admission', () => {
  it('admits whatever still fits into the next batch, however long it waited', () => {
    expect(refusesSend(queue(0, 0), limits)).toBe(false);
    expect(refusesSend(queue(511, 10_000), limits)).toBe(false);
  });

  it('refuses past a full batch only once the oldest waiting send is older than the delay bound', () => {
    expect(refusesSend(queue(512, 50), limits)).toBe(false);
    expect(refusesSend(queue(512, 51), limits)).toBe(true);
    expect(refusesSend(queue(3000, 10), limits)).toBe(false);
  });

  it('refuses at the count bound whatever the delay', () => {
    expect(refusesSend(queue(4096, 0), limits)).toBe(true);
    expect(refusesSend(queue(8, 0), { maxDelayMs: 50, maxPending: 8 })).toBe(true);
  });
});

describe('sendRidOf', () => {
  it('reads the rid of a send written as the SDK writes it, wherever the rid is', () => {
    expect(sendRidOf(bytes('{"type":"send","channel":"x","rid":42}'))).toBe(42);
    expect(sendRidOf(bytes('{"type":"send","rid":7,"channel":"x"}'))).toBe(7);
    expect(sendRidOf(bytes('{"type":"send","rid":0}'))).toBe(0);
    expect(sendRidOf(bytes('{"type":"send","rid":4294967295}'))).toBe(0xffff_ffff);
  });

  it('leaves everything else to the full parse', () => {
    for (const text of [
      '{"type":"ping","rid":1}',
      '{"rid":1,"type":"send"}',
      '{ "type":"send","rid":1}',
      '{"type":"send","channel":"x"}',
      '{"type":"send","rid":1,"x":{"rid":2}}',
      '{"type":"send","rid":-1}',
      '{"type":"send","rid":01}',
      '{"type":"send","rid":1.5}',
      '{"type":"send","rid":"1"}',
      '{"type":"send","rid":4294967296}',
      '{"type":"send","rid":99999999999}',
      '{"type":"send","rid":}',
    ]) {
      expect(sendRidOf(bytes(text)), text).toBeUndefined();
    }
    expect(sendRidOf([bytes('{"type":"send","rid":1}')])).toBeUndefined();
  });

  it('answers with a valid error frame carrying the retry-after hint', () => {
    expect(RelayFrame.parse(JSON.parse(overloadedFrame(9, 50)))).toEqual({ type: 'error', rid: 9, code: 'overloaded', message: 'the relay is at capacity; retry', retryAfterMs: 50 });
  });
});
