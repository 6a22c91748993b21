import { toBase64Url } from '@backchannel/client-sdk/protocol';
import type { OpenChannel, RawMember } from '../../support/members.js';

/**
 * Two parties of a channel who keep talking while a test attacks the relay: `works()` sends one
 * message and resolves once the other party's application got it, proving that other
 * connections are unharmed.
 */
export class Bystanders {
  readonly #from: RawMember;
  readonly #to: RawMember;
  readonly #channel: string;
  readonly #got = new Set<string>();
  #last = 0;
  #n = 0;

  constructor(ch: OpenChannel) {
    [this.#from, this.#to] = ch.parties as [RawMember, RawMember];
    this.#channel = ch.channel;
  }

  /** Connects both and subscribes the recipient. */
  async start(): Promise<void> {
    await this.#from.conn.connect();
    await this.#to.conn.connect();
    this.#to.conn.subscribe(this.#channel, {
      after: () => this.#last,
      deliver: async (f) => {
        this.#last = f.seq;
        this.#got.add(f.header);
      },
    });
  }

  /** One message end to end; rejects if it is not acked and delivered within `timeoutMs`. */
  async works(timeoutMs = 10_000): Promise<void> {
    const header = toBase64Url(new TextEncoder().encode(`bystander-${++this.#n}`));
    await this.#from.conn.request({
      type: 'send',
      channel: this.#channel,
      clientMsgId: `bystander-${this.#n}-${Date.now()}`,
      headers: { [this.#to.key]: header },
      body: toBase64Url(new Uint8Array(16)),
      commitment: toBase64Url(new Uint8Array(32).fill(this.#n & 255)),
    });
    const until = Date.now() + timeoutMs;
    while (!this.#got.has(header)) {
      if (Date.now() > until) throw new Error('bystander message not delivered');
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Closes both connections. */
  async close(): Promise<void> {
    await this.#from.conn.close();
    await this.#to.conn.close();
  }
}
