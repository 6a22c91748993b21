import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { fromBase64Url } from '@backchannel/client-sdk/protocol';
import type { Db } from '../db/connect.js';
import { readRecords } from './formal-log.js';

interface Watcher {
  readonly ws: WebSocket;
  next: number;
  busy: boolean;
}

/**
 * `/v1/formal/ws?channel=<id>`: a read-only, unauthenticated WebSocket that sends a channel's
 * formal records, then each new one as it is appended (on any relay node: appends are announced
 * by NOTIFY). Anything a client sends is ignored.
 */
export class FormalFeed {
  readonly #db: Db;
  readonly #wss = new WebSocketServer({ noServer: true, maxPayload: 1024, perMessageDeflate: false });
  readonly #watchers = new Map<string, Set<Watcher>>();

  constructor(db: Db) {
    this.#db = db;
  }

  /** Takes an upgrade request for the feed; false when the channel parameter is not a channel id. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, url: URL): boolean {
    const channelText = url.searchParams.get('channel') ?? '';
    if (fromBase64Url(channelText)?.length !== 16) return false;
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      const watcher: Watcher = { ws, next: 0, busy: false };
      let set = this.#watchers.get(channelText);
      if (set === undefined) this.#watchers.set(channelText, (set = new Set()));
      set.add(watcher);
      ws.on('error', () => ws.terminate());
      ws.on('close', () => {
        set.delete(watcher);
        if (set.size === 0) this.#watchers.delete(channelText);
      });
      void this.#push(channelText, watcher);
    });
    return true;
  }

  /** A record was appended to a channel's log (here or on another node). */
  appended(channelText: string): void {
    for (const w of this.#watchers.get(channelText) ?? []) void this.#push(channelText, w);
  }

  /** Closes every feed socket. */
  close(): void {
    for (const set of this.#watchers.values()) for (const w of set) w.ws.close(1001, 'relay shutting down');
  }

  async #push(channelText: string, w: Watcher): Promise<void> {
    if (w.busy) return;
    w.busy = true;
    try {
      const records = await readRecords(this.#db.kysely, fromBase64Url(channelText)!, w.next);
      for (const r of records) {
        w.ws.send(JSON.stringify({ type: 'record', record: r }));
        w.next = r.index + 1;
      }
    } catch {
      w.ws.close(1013, 'try again later');
    } finally {
      w.busy = false;
    }
  }
}
