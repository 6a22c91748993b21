import { toBase64Url, type RelayFrameOf } from '@backchannel/client-sdk/protocol';
import type { Committed } from '../store/message-log.js';

/**
 * A committed message's `deliver` frame, serialised once for all its recipients: only the
 * recipient's header differs, and it is spliced between the two halves. Serialising the 1 KiB
 * body again for every recipient was most of the cost of a delivery. The halves are built on the
 * first delivery, so a message nobody here receives (its only subscriber is its sender, say)
 * costs nothing. The text is exactly what `JSON.stringify` makes of the frame (a test holds it to
 * that).
 */
export class DeliverFrame {
  readonly #c: Committed;
  #halves: readonly [head: string, tail: string] | undefined;

  constructor(c: Committed) {
    this.#c = c;
  }

  /** The frame's JSON text for the recipient whose header this is. */
  for(header: RelayFrameOf<'deliver'>['header']): string {
    const [head, tail] = (this.#halves ??= halves(this.#c));
    return head + JSON.stringify(header) + tail;
  }
}

function halves(c: Committed): readonly [string, string] {
  const s = JSON.stringify;
  return [
    `{"type":"deliver","channel":${s(c.channelText)},"seq":${s(c.seq)},"from":${s(c.senderText)},"header":`,
    `,"body":${s(c.body)},"commitment":${s(toBase64Url(c.commitment))},"receivedAt":${s(c.receivedAt)},"chain":${s(toBase64Url(c.chain))}}`,
  ];
}
