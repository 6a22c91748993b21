import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { SUBPROTOCOL, readAuthSubprotocol, type ClientFrame, type RelayFrame } from '@backchannel/client-sdk/protocol';

/** Which member a proxied socket belongs to. */
export interface Link {
  readonly member: string;
  /** Sends a forged frame to this member, as if from the relay. */
  inject(frame: RelayFrame): void;
}

/** Rewrites traffic: return the frames to pass on (none drops it, several inject). */
export interface Tamper {
  toClient?(frame: RelayFrame, link: Link): RelayFrame[];
  toRelay?(frame: ClientFrame, link: Link): ClientFrame[];
}

/** A running hostile relay front. */
export interface HostileProxy {
  readonly url: string;
  tamper: Tamper;
  /** Every frame clients sent to the relay, by member. */
  readonly sent: { member: string; frame: ClientFrame }[];
  /** The member's live (open) proxied sockets: inject through them at any time. */
  links(member: string): Link[];
  close(): Promise<void>;
}

/**
 * An actively malicious relay, as the threat model allows: a proxy in front of a real relay
 * that can drop, inject, reorder, replay and rewrite any frame in either direction. Clients
 * authenticate to the real relay through it (the DH proof is bound to the relay's key, not to
 * the transport), so everything the relay could do, this can do.
 */
export async function startHostileProxy(upstream: string): Promise<HostileProxy> {
  const wss = new WebSocketServer({ noServer: true, handleProtocols: () => SUBPROTOCOL });
  const sockets = new Set<WebSocket>();
  const live = new Set<Link>();
  const server: Server = createServer((req, res) => {
    void fetch(new URL(req.url ?? '/', upstream)).then(async (r) => {
      res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? 'application/json' });
      res.end(Buffer.from(await r.arrayBuffer()));
    }, () => res.destroy());
  });
  const proxy: HostileProxy = {
    url: '',
    tamper: {},
    sent: [],
    links: (member) => [...live].filter((l) => l.member === member),
    close: async () => {
      for (const s of sockets) s.terminate();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  server.on('upgrade', (req, socket, head) => {
    const path = req.url ?? '/';
    // The credentials ride as an offered subprotocol: pass every one on.
    const offered = (req.headers['sec-websocket-protocol'] ?? SUBPROTOCOL).split(',').map((p) => p.trim());
    const member = readAuthSubprotocol(offered)?.key ?? '';
    const up = new WebSocket(new URL(path, upstream.replace(/^http/, 'ws')), offered);
    up.on('unexpected-response', () => socket.destroy());
    up.on('error', () => socket.destroy());
    up.on('open', () => {
      wss.handleUpgrade(req, socket, head, (client) => {
        sockets.add(client);
        sockets.add(up);
        const link: Link = { member, inject: (frame) => client.send(JSON.stringify(frame)) };
        live.add(link);
        up.on('message', (data) => {
          const frame = JSON.parse(data.toString()) as RelayFrame;
          for (const f of proxy.tamper.toClient?.(frame, link) ?? [frame]) client.send(JSON.stringify(f));
        });
        client.on('message', (data) => {
          const frame = JSON.parse(data.toString()) as ClientFrame;
          proxy.sent.push({ member, frame });
          for (const f of proxy.tamper.toRelay?.(frame, link) ?? [frame]) up.send(JSON.stringify(f));
        });
        up.on('close', (code) => client.close(code >= 4000 || code === 1000 || code === 1001 ? code : 1011));
        client.on('close', () => {
          live.delete(link);
          up.close();
        });
      });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  return Object.assign(proxy, { url: `http://127.0.0.1:${port}` });
}
