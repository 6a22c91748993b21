import pg from 'pg';
import type { Logger } from '../logger.js';
import { COMMIT_NOTIFY_CHANNEL } from '../store/message-log.js';
import { FORMAL_NOTIFY_CHANNEL } from '../disclosure/formal-log.js';

/** NOTIFY channel announcing that a channel's roster changed: payload is the channel id only. */
export const ROSTER_NOTIFY_CHANNEL = 'bc_roster';

/** Callbacks of {@link NotifyListener}. */
export interface NotifyHandlers {
  advanced(channelText: string, seq: number): void;
  rosterChanged(channelText: string): void;
  /** A formal record was appended to a channel's log. */
  formalAppended(channelText: string): void;
  /** The listener reconnected: notifications may have been missed. */
  resync(): void;
}

/**
 * One dedicated connection LISTENing for other relay nodes' commits and roster changes. It
 * reconnects by itself; after a reconnect everything is re-read, since notifications sent
 * meanwhile are lost.
 */
export class NotifyListener {
  readonly #url: string;
  readonly #handlers: NotifyHandlers;
  readonly #log: Logger;
  #client: pg.Client | undefined;
  #stopped = false;
  #retry: NodeJS.Timeout | undefined;

  constructor(url: string, handlers: NotifyHandlers, log: Logger) {
    this.#url = url;
    this.#handlers = handlers;
    this.#log = log;
  }

  /** Connects and listens; resolves once listening (or rejects on the first failure). */
  async start(): Promise<void> {
    const client = new pg.Client({ connectionString: this.#url });
    client.on('notification', (n) => this.#onNotification(n.channel, n.payload ?? ''));
    client.on('error', () => this.#reconnect(client));
    client.on('end', () => this.#reconnect(client));
    await client.connect();
    await client.query(`listen ${COMMIT_NOTIFY_CHANNEL}`);
    await client.query(`listen ${ROSTER_NOTIFY_CHANNEL}`);
    await client.query(`listen ${FORMAL_NOTIFY_CHANNEL}`);
    this.#client = client;
  }

  /** Stops listening. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#retry);
    const client = this.#client;
    this.#client = undefined;
    await client?.end().catch(() => undefined);
  }

  #onNotification(channel: string, payload: string): void {
    if (channel === ROSTER_NOTIFY_CHANNEL) {
      this.#handlers.rosterChanged(payload);
      return;
    }
    if (channel === FORMAL_NOTIFY_CHANNEL) {
      this.#handlers.formalAppended(payload);
      return;
    }
    for (const entry of payload.split(' ')) {
      const at = entry.lastIndexOf(':');
      const seq = Number(entry.slice(at + 1));
      if (at > 0 && Number.isSafeInteger(seq)) this.#handlers.advanced(entry.slice(0, at), seq);
    }
  }

  #reconnect(client: pg.Client): void {
    if (this.#stopped || this.#client !== client) return;
    this.#client = undefined;
    client.removeAllListeners();
    client.on('error', () => undefined);
    void client.end().catch(() => undefined);
    const attempt = (): void => {
      if (this.#stopped) return;
      this.start().then(
        () => {
          this.#log.info({ event: 'notify_reconnected' }, 'database notifications restored');
          this.#handlers.resync();
        },
        () => {
          this.#retry = setTimeout(attempt, 500);
        },
      );
    };
    this.#log.warn({ event: 'notify_lost' }, 'database notification connection lost; reconnecting');
    this.#retry = setTimeout(attempt, 200);
  }
}
