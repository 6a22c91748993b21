import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { fromBase64Url } from '@backchannel/client-sdk/protocol';
import type { Db } from '../db/connect.js';
import type { Metrics } from '../metrics.js';
import { readRecords } from './formal-log.js';

interface Watcher {
  readonly ws: WebSocket;
  next: number;
  busy: boolean;
  /** A record was appended while a push ran: push again when it ends. */
  again: boolean;
  /** Set by a pong; a watcher that did not answer the last ping is dropped. */
  alive: boolean;
}

/** Bounds of the public feed: it is unauthenticated, so nobody gets to hold unbounded resources. */
export const FEED_LIMITS = {
  /** Feed sockets open at once on one relay node. */
  maxWatchers: 10_000,
  /** Records read from the database at once for one watcher. */
  pageRecords: 64,
  /**
   * Unsent bytes a feed socket may hold before the relay waits for them to reach the kernel:
   * a slow reader holds at most this plus one record, however long the log.
   */
  highWaterBytes: 256 * 1024,
  /** Ping period; no pong by the next ping closes the socket. */
  heartbeatMs: 30_000,
} as const;

/**
 * `/v1/formal/ws?channel=<id>`: a read-only, unauthenticated WebSocket that sends a channel's
 * formal records, then each new one as it is appended (on any relay node: appends are announced
 * by NOTIFY). Anything a client sends is ignored. Records are read a page at a time and sent
 * with backpressure, so a socket never holds more than `FEED_LIMITS.highWaterBytes` (and one
 * record) unsent, however long the log; a reader that stops reading stalls only itself until
 * the heartbeat drops it.
 */
export class FormalFeed {
  readonly #db: Db;
  readonly #metrics: Metrics;
  readonly #wss = new WebSocketServer({ noServer: true, maxPayload: 1024, perMessageDeflate: false });
  readonly #watchers = new Map<string, Set<Watcher>>();
  readonly #heartbeat: NodeJS.Timeout;
  #count = 0;
  /** Most bytes one feed socket held unsent, since start. */
  #peakBuffered = 0;

  constructor(db: Db, metrics: Metrics) {
    this.#db = db;
    this.#metrics = metrics;
    this.#heartbeat = setInterval(() => {
      for (const set of this.#watchers.values()) {
        for (const w of set) {
          if (!w.alive) w.ws.terminate();
          else {
            w.alive = false;
            w.ws.ping();
          }
        }
      }
    }, FEED_LIMITS.heartbeatMs);
    this.#heartbeat.unref();
  }

  /**
   * Takes an upgrade request for the feed; false when the channel parameter is not a channel id.
   * Past `FEED_LIMITS.maxWatchers` open feeds it answers 503 itself (and returns true).
   */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, url: URL): boolean {
    const channelText = url.searchParams.get('channel') ?? '';
    if (fromBase64Url(channelText)?.length !== 16) return false;
    if (this.#count >= FEED_LIMITS.maxWatchers) {
      const body = JSON.stringify({ code: 'unavailable' });
      socket.end(`HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nretry-after: 30\r\nconnection: close\r\n\r\n${body}`);
      return true;
    }
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      this.#count++; // counted once the handshake succeeded: a failed one never closes
      const watcher: Watcher = { ws, next: 0, busy: false, again: false, alive: true };
      let set = this.#watchers.get(channelText);
      if (set === undefined) this.#watchers.set(channelText, (set = new Set()));
      set.add(watcher);
      ws.on('pong', () => {
        watcher.alive = true;
      });
      ws.on('error', () => ws.terminate());
      ws.on('close', () => {
        this.#count--;
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
    clearInterval(this.#heartbeat);
    for (const set of this.#watchers.values()) for (const w of set) w.ws.close(1001, 'relay shutting down');
  }

  async #push(channelText: string, w: Watcher): Promise<void> {
    if (w.busy) {
      w.again = true;
      return;
    }
    w.busy = true;
    const channel = fromBase64Url(channelText)!;
    try {
      do {
        w.again = false;
        for (;;) {
          const page = await readRecords(this.#db.kysely, channel, w.next, FEED_LIMITS.pageRecords);
          for (const r of page) {
            if (w.ws.readyState !== w.ws.OPEN) return;
            await this.#send(w.ws, JSON.stringify({ type: 'record', record: r }));
            w.next = r.index + 1;
          }
          if (page.length < FEED_LIMITS.pageRecords) break;
        }
      } while (w.again);
    } catch {
      w.ws.close(1013, 'try again later');
    } finally {
      w.busy = false;
    }
  }

  /** Sends one frame; past the high-water mark, resolves only once it has reached the kernel. */
  async #send(ws: WebSocket, text: string): Promise<void> {
    const written = new Promise<void>((resolve, reject) => ws.send(text, (err) => (err === undefined || err === null ? resolve() : reject(err))));
    const buffered = ws.bufferedAmount;
    if (buffered > this.#peakBuffered) {
      this.#peakBuffered = buffered;
      this.#metrics.formalFeedBufferedPeak.set(buffered);
    }
    if (buffered > FEED_LIMITS.highWaterBytes) await written;
    else written.catch(() => undefined); // a failed write closes the socket; the next send sees it
  }
}
