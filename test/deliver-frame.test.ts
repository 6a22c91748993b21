import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RelayFrame, toBase64Url } from '@backchannel/client-sdk/protocol';
import { DeliverFrame } from '../server/src/delivery/deliver-frame.js';
import type { Committed } from '../server/src/store/message-log.js';

const b64 = (min: number, max: number) => fc.uint8Array({ minLength: min, maxLength: max }).map(toBase64Url);

// The relay serialises a committed message's `deliver` frame once and splices in each recipient's
// header (server/src/delivery/deliver-frame.ts): the text must be exactly JSON.stringify's.
describe('deliver frame serialised once', () => {
  it('is byte for byte what JSON.stringify makes of the frame, and a valid relay frame', () => {
    fc.assert(
      fc.property(
        fc.record({
          channel: b64(16, 16),
          sender: b64(32, 32),
          seq: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
          receivedAt: fc.integer({ min: 0, max: 2 ** 48 }),
          body: b64(0, 1500),
          commitment: fc.uint8Array({ minLength: 32, maxLength: 32 }),
          chain: fc.uint8Array({ minLength: 32, maxLength: 32 }),
          headers: fc.array(b64(1, 200), { minLength: 1, maxLength: 7 }),
        }),
        (m) => {
          const c: Committed = {
            channelText: m.channel,
            senderText: m.sender,
            clientMsgId: 'x',
            seq: m.seq,
            receivedAt: m.receivedAt,
            chain: m.chain,
            duplicate: false,
            headers: {},
            body: m.body,
            commitment: m.commitment,
          };
          const frame = new DeliverFrame(c);
          for (const header of m.headers) {
            const text = frame.for(header);
            const expected = {
              type: 'deliver',
              channel: m.channel,
              seq: m.seq,
              from: m.sender,
              header,
              body: m.body,
              commitment: toBase64Url(m.commitment),
              receivedAt: m.receivedAt,
              chain: toBase64Url(m.chain),
            };
            expect(text).toBe(JSON.stringify(expected));
            expect(RelayFrame.safeParse(JSON.parse(text)).success).toBe(true);
          }
        },
      ),
    );
  });
});
