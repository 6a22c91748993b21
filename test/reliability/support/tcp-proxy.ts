import { createServer, connect, type Server, type Socket } from 'node:net';

/** How a proxied connection behaves. */
export type PairMode = 'forward' | 'blackhole' | 'stall';

/** One proxied TCP connection: the client's socket and the one to the relay. */
export interface ProxyPair {
  readonly client: Socket;
  readonly upstream: Socket;
  mode: PairMode;
  /** When the mode last changed away from `forward`. */
  faultAt?: number;
  /** When the relay closed its side. */
  upstreamClosedAt?: number;
  /**
   * True once the relay answered `101 Switching Protocols`: a WebSocket, which the relay
   * heartbeats. Other connections are HTTP (the SDK's challenge fetches, kept alive), which
   * the relay closes after its keep-alive timeout instead.
   */
  webSocket: boolean;
}

/**
 * A TCP proxy in front of the relay that can misbehave per connection: `drop` resets both sides
 * at once; `blackhole` silently stops forwarding in both directions while both sockets stay
 * open (a half-open connection: a NAT or a cable gone); `stall` stops reading from the relay
 * (a reader that stopped reading) so the relay's send buffer fills. Socket-level, so no private
 * WebSocket state is touched.
 */
export class TcpProxy {
  readonly pairs = new Set<ProxyPair>();
  /** Pairs that were faulted, kept after they close (for figures). */
  readonly faulted: ProxyPair[] = [];
  /** Mode of new connections. */
  defaultMode: PairMode = 'forward';
  #server: Server | undefined;
  port = 0;

  constructor(readonly targetPort: number) {}

  /** Listens on a free port. */
  async start(): Promise<void> {
    const server = createServer((client) => this.#accept(client));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    const address = server.address();
    this.port = typeof address === 'object' && address !== null ? address.port : 0;
    this.#server = server;
  }

  /** The proxy's base URL. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Resets both sides of a pair. */
  drop(pair: ProxyPair): void {
    pair.client.resetAndDestroy();
    pair.upstream.resetAndDestroy();
  }

  /** Changes a pair's behaviour (back to `forward` resumes reading a stalled relay side). */
  setMode(pair: ProxyPair, mode: PairMode): void {
    if (pair.mode === mode) return;
    if (mode !== 'forward') {
      pair.faultAt = Date.now();
      this.faulted.push(pair);
    }
    pair.mode = mode;
    if (mode === 'stall') pair.upstream.pause();
    else pair.upstream.resume();
  }

  /** Pairs whose both sides are still open and forwarding. */
  live(): ProxyPair[] {
    return [...this.pairs].filter((p) => p.mode === 'forward' && !p.client.destroyed && !p.upstream.destroyed);
  }

  /** Closes everything. */
  async close(): Promise<void> {
    for (const p of this.pairs) this.drop(p);
    await new Promise<void>((resolve) => (this.#server === undefined ? resolve() : this.#server.close(() => resolve())));
  }

  #accept(client: Socket): void {
    const upstream = connect(this.targetPort, '127.0.0.1');
    const pair: ProxyPair = { client, upstream, mode: this.defaultMode, webSocket: false };
    if (pair.mode === 'stall') upstream.pause();
    this.pairs.add(pair);
    client.on('data', (d) => {
      if (pair.mode !== 'blackhole') upstream.write(d);
    });
    upstream.on('data', (d: Buffer) => {
      if (!pair.webSocket && d.subarray(0, 12).toString('latin1') === 'HTTP/1.1 101') pair.webSocket = true;
      if (pair.mode === 'forward') client.write(d);
    });
    const gone = (): void => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', gone);
    upstream.on('error', () => {
      pair.upstreamClosedAt ??= Date.now();
      gone();
    });
    client.on('close', gone);
    // When the relay gives up on a half-open connection the client's side is torn down too: in
    // a real network, the client's next write would meet a reset.
    upstream.on('close', () => {
      pair.upstreamClosedAt ??= Date.now();
      gone();
    });
  }
}
