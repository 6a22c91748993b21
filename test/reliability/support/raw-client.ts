import WebSocket from 'ws';
import { authProof, sodium, sodiumReady } from '@backchannel/client-sdk';
import { AUTH_PATHS, Challenge, RelayFrame, SUBPROTOCOL, authSubprotocol, fromBase64Url, toBase64Url } from '@backchannel/client-sdk/protocol';

/** What to open for `identity`: the socket URL and the subprotocols, with a fresh challenge answered correctly (or not). */
export async function socketOffer(relayUrl: string, identity: { publicKey: Uint8Array; secretKey: Uint8Array }, tamper?: (proof: Uint8Array) => Uint8Array): Promise<{ url: string; protocols: string[] }> {
  await sodiumReady();
  const res = await fetch(new URL(AUTH_PATHS.challenge, relayUrl));
  const challenge = Challenge.parse(await res.json());
  const relayKey = fromBase64Url(challenge.relayKey)!;
  let proof = authProof(identity.secretKey, relayKey, identity.publicKey, relayKey, fromBase64Url(challenge.nonce)!);
  if (tamper !== undefined) proof = tamper(proof);
  const url = new URL(AUTH_PATHS.socket, relayUrl);
  url.protocol = 'ws:';
  const credentials = authSubprotocol({ key: toBase64Url(identity.publicKey), nonce: challenge.nonce, proof: toBase64Url(proof) });
  return { url: url.toString(), protocols: [SUBPROTOCOL, credentials] };
}

/**
 * An authenticated socket that sends whatever bytes a test wants, and records every frame and
 * the close code the relay answers with. For hostile input: the SDK would refuse to send most
 * of it.
 */
export class RawClient {
  readonly ws: WebSocket;
  readonly frames: RelayFrame[] = [];
  /** Text the relay sent that is not a valid relay frame (should never happen). */
  readonly garbage: string[] = [];
  closeCode: number | undefined;
  readonly closed: Promise<number>;
  #wake: (() => void)[] = [];

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('message', (data, isBinary) => {
      const text = data.toString();
      const parsed = isBinary ? undefined : RelayFrame.safeParse(safeJson(text));
      if (parsed?.success === true) this.frames.push(parsed.data);
      else this.garbage.push(text.slice(0, 200));
      for (const w of this.#wake.splice(0)) w();
    });
    this.closed = new Promise((resolve) =>
      ws.once('close', (code) => {
        resolve((this.closeCode = code));
        for (const w of this.#wake.splice(0)) w();
      }),
    );
    ws.on('error', () => undefined);
  }

  /** Opens an authenticated socket for a fresh (or the given) identity. */
  static async open(relayUrl: string, identity?: { publicKey: Uint8Array; secretKey: Uint8Array }, options: { maxPayload?: number } = {}): Promise<RawClient> {
    await sodiumReady();
    const id = identity ?? (() => {
      const kp = sodium.crypto_box_keypair();
      return { publicKey: kp.publicKey, secretKey: kp.privateKey };
    })();
    const offer = await socketOffer(relayUrl, id);
    const ws = new WebSocket(offer.url, offer.protocols, { maxPayload: options.maxPayload ?? 64 * 1024 * 1024 });
    const client = new RawClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: HTTP ${res.statusCode}`)));
      ws.once('error', reject);
    });
    return client;
  }

  /** Sends a frame as JSON text. */
  send(frame: unknown): void {
    this.ws.send(JSON.stringify(frame));
  }

  /** Sends raw bytes, as text (`binary: false`) or as a binary message. */
  sendRaw(data: Uint8Array | string, binary = false): void {
    this.ws.send(data, { binary });
  }

  /** Frames of the given type received so far. */
  ofType<T extends RelayFrame['type']>(type: T): Extract<RelayFrame, { type: T }>[] {
    return this.frames.filter((f): f is Extract<RelayFrame, { type: T }> => f.type === type);
  }

  /** Waits until `n` frames arrived (or the socket closed), then returns them all. */
  async waitFrames(n: number, timeoutMs = 10_000): Promise<RelayFrame[]> {
    const until = Date.now() + timeoutMs;
    while (this.frames.length < n && this.closeCode === undefined && Date.now() < until) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, until - Date.now());
        this.#wake.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.frames;
  }

  /** Closes the socket. */
  close(): void {
    this.ws.terminate();
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
