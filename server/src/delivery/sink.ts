import type { RelayFrame } from '@backchannel/client-sdk/protocol';

/** Where a subscription writes: one authenticated connection. */
export interface Sink {
  /** Sends a frame; false when the connection is gone (or was just cut as a slow consumer). */
  send(frame: RelayFrame): boolean;
  /** Sends a frame already serialised (`type` for metrics); false as for `send`. */
  sendText(type: RelayFrame['type'], json: string): boolean;
  /** Cuts the connection so the client reconnects and resumes (delivery could not continue). */
  abort(): void;
  /** The authenticated member key, as base64url. */
  readonly memberText: string;
}
