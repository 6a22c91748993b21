import { createServer, type Server } from 'node:http';
import { pathToFileURL } from 'node:url';
import { WebSocketServer, type WebSocket } from 'ws';
import { SUBPROTOCOL } from '@backchannel/client-sdk/protocol';

/**
 * The ceiling: a bare WebSocket forwarder speaking the relay's wire shape with none of its
 * work. It answers `send` with a `sent`-shaped ack (a per-channel counter, a constant chain)
 * and forwards a `deliver` to every recipient named in `headers`; `subscribe` gets
 * `subscribed` and `queue.empty`; acks are ignored. No authentication, no validation, no
 * persistence: what is left is JSON and `ws` on the same machine, the most any relay could do.
 * Every relay figure is reported as a ratio to this one measured in the same run.
 */

const CHAIN = 'A'.repeat(43);
const SLOW_CONSUMER_BYTES = 1024 * 1024;

interface Frame {
  type?: unknown;
  rid?: number;
  channel?: string;
  clientMsgId?: string;
  headers?: Record<string, string>;
  body?: string;
  commitment?: string;
}

/** A running forwarder. */
export interface Ceiling {
  readonly url: string;
  close(): Promise<void>;
}

/** Starts the forwarder on 127.0.0.1 (port 0: any free port). */
export async function startCeiling(port = 0): Promise<Ceiling> {
  const members = new Map<string, WebSocket>();
  const heads = new Map<string, number>();
  const server: Server = createServer((_req, res) => {
    res.writeHead(404).end();
  });
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 64 * 1024, handleProtocols: (p) => (p.has(SUBPROTOCOL) ? SUBPROTOCOL : false) });

  const write = (ws: WebSocket, frame: object): void => {
    if (ws.bufferedAmount > SLOW_CONSUMER_BYTES) {
      ws.terminate();
      return;
    }
    ws.send(JSON.stringify(frame));
  };

  server.on('upgrade', (req, socket, head) => {
    const key = new URL(req.url ?? '/', 'http://ceiling.invalid').searchParams.get('key') ?? '';
    wss.handleUpgrade(req, socket, head, (ws) => {
      members.set(key, ws);
      ws.on('close', () => {
        if (members.get(key) === ws) members.delete(key);
      });
      ws.on('error', () => ws.terminate());
      ws.on('message', (data) => {
        let f: Frame;
        try {
          f = JSON.parse(String(data)) as Frame;
        } catch {
          return;
        }
        if (f.type === 'send' && f.channel !== undefined && f.headers !== undefined) {
          const seq = (heads.get(f.channel) ?? 0) + 1;
          heads.set(f.channel, seq);
          const receivedAt = Date.now();
          for (const [to, header] of Object.entries(f.headers)) {
            const peer = members.get(to);
            if (peer === undefined) continue;
            write(peer, { type: 'deliver', channel: f.channel, seq, from: key, header, body: f.body, commitment: f.commitment, receivedAt, chain: CHAIN });
          }
          write(ws, { type: 'sent', rid: f.rid, channel: f.channel, clientMsgId: f.clientMsgId, seq, receivedAt, chain: CHAIN, duplicate: false });
        } else if (f.type === 'subscribe' && f.channel !== undefined) {
          const seq = heads.get(f.channel) ?? 0;
          write(ws, { type: 'subscribed', rid: f.rid, channel: f.channel, head: seq });
          write(ws, { type: 'queue.empty', channel: f.channel, seq });
        }
      });
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const bound = typeof address === 'object' && address !== null ? address.port : port;
  return {
    url: `http://127.0.0.1:${bound}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const ws of members.values()) ws.terminate();
        wss.close();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

// Run as its own process (the bench spawns it like the relay, so both are sampled alike).
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const ceiling = await startCeiling(Number(process.argv[2] ?? 0));
  process.stdout.write(`${JSON.stringify({ event: 'ready', url: ceiling.url })}\n`);
  const stop = (): void => void ceiling.close().then(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
