import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RelayConnection, sodium, sodiumReady, type WebSocketConstructor } from '@backchannel/client-sdk';
import { AUTH_SUBPROTOCOL_PREFIX, SUBPROTOCOL, readAuthSubprotocol } from '@backchannel/client-sdk/protocol';
import { AUTH_FAILURE_BURST } from '../../server/src/auth-limiter.js';
import { socketOffer } from '../reliability/support/raw-client.js';
import { createTestDatabase, startTestRelay, type TestRelay } from '../support/relay.js';

type Identity = { publicKey: Uint8Array; secretKey: Uint8Array };
type Offer = { url: string; protocols: string[] };

function identity(): Identity {
  const kp = sodium.crypto_box_keypair();
  return { publicKey: kp.publicKey, secretKey: kp.privateKey };
}

/** `offer` pointed at another node (same path, another port). */
function at(relay: TestRelay, offer: Offer): Offer {
  const url = new URL(offer.url);
  url.port = String(relay.port);
  return { ...offer, url: url.toString() };
}

/** Tries an upgrade; resolves with the HTTP status (101 when a socket opened, then closed) and the refusal's code. */
function attempt(offer: Offer, localAddress?: string): Promise<{ status: number; code?: string }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(offer.url, offer.protocols, localAddress === undefined ? {} : { localAddress });
    ws.once('open', () => {
      ws.close();
      resolve({ status: 101 });
    });
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, code: (JSON.parse(body) as { code: string }).code }));
    });
    ws.once('error', () => resolve({ status: -1 }));
  });
}

const flip = (proof: Uint8Array): Uint8Array => proof.map((b, i) => (i === 0 ? b ^ 1 : b));

// Two relay nodes on one PostgreSQL: what one node has accepted, the other must refuse.
describe('authentication across relay nodes', () => {
  let a: TestRelay;
  let b: TestRelay;

  beforeAll(async () => {
    await sodiumReady();
    const databaseUrl = await createTestDatabase();
    a = await startTestRelay({ DATABASE_URL: databaseUrl });
    b = await startTestRelay({ DATABASE_URL: databaseUrl });
  });
  afterAll(async () => {
    await b?.close();
    await a?.close();
  });

  it('refuses on node B a login already used on node A (and on A again)', async () => {
    const offer = await socketOffer(a.url, identity());
    expect(await attempt(offer)).toEqual({ status: 101 });
    expect(await attempt(at(b, offer))).toEqual({ status: 401, code: 'auth_failed' });
    expect(await attempt(offer)).toEqual({ status: 401, code: 'auth_failed' });
  });

  it('uses a nonce up on a failed proof: the right proof for it is then refused on every node', async () => {
    const id = identity();
    const wrong = await socketOffer(a.url, id, flip);
    expect(await attempt(wrong)).toEqual({ status: 401, code: 'auth_failed' });
    // The same nonce, answered correctly this time.
    const creds = readAuthSubprotocol(wrong.protocols)!;
    const proof = flip(Buffer.from(creds.proof, 'base64url'));
    const right = { ...wrong, protocols: [SUBPROTOCOL, `${AUTH_SUBPROTOCOL_PREFIX}${creds.key}.${creds.nonce}.${Buffer.from(proof).toString('base64url')}`] };
    expect(await attempt(at(b, right))).toEqual({ status: 401, code: 'auth_failed' });
    expect(await attempt(right)).toEqual({ status: 401, code: 'auth_failed' });
  });

  it('refuses credentials in the URL query, where the SDK no longer puts them', async () => {
    const offer = await socketOffer(a.url, identity());
    const creds = readAuthSubprotocol(offer.protocols)!;
    const url = new URL(offer.url);
    for (const [k, v] of Object.entries(creds)) url.searchParams.set(k, v);
    expect(await attempt({ url: url.toString(), protocols: [SUBPROTOCOL] })).toEqual({ status: 401, code: 'auth_failed' });
  });

  it('the SDK sends its proof as a subprotocol, never in the URL', async () => {
    const seen: { url: string; protocols: string[] }[] = [];
    class Recording extends WebSocket {
      constructor(url: string, protocols?: string | string[]) {
        const list = typeof protocols === 'string' ? [protocols] : (protocols ?? []);
        seen.push({ url, protocols: list });
        super(url, list);
      }
    }
    const conn = new RelayConnection({ url: a.url, identity: identity(), platform: { WebSocket: Recording as unknown as WebSocketConstructor } });
    await conn.connect();
    await conn.close();
    expect(seen).toHaveLength(1);
    expect(new URL(seen[0]!.url).search).toBe('');
    expect(seen[0]!.protocols[0]).toBe(SUBPROTOCOL);
    expect(readAuthSubprotocol(seen[0]!.protocols)).toBeDefined();
  });

  it('limits failed attempts per peer before any X25519: the flooding address gets 429, other clients are still served', async () => {
    const flooder = '127.0.0.2';
    // Twice its allowance of wrong proofs at once (challenges fetched first): the peer runs into
    // debt, so the refusals below do not depend on how fast this machine is.
    const offers = await Promise.all(Array.from({ length: 2 * AUTH_FAILURE_BURST }, () => socketOffer(a.url, identity(), flip)));
    const statuses = (await Promise.all(offers.map((o) => attempt(o, flooder)))).map((r) => r.status);
    expect(statuses.filter((s) => s === 401).length).toBeGreaterThanOrEqual(AUTH_FAILURE_BURST);
    expect(statuses.every((s) => s === 401 || s === 429)).toBe(true);
    // Past its allowance even a correct proof from that address is refused, cheaply.
    expect(await attempt(await socketOffer(a.url, identity()), flooder)).toEqual({ status: 429, code: 'auth_rate_limited' });
    expect(await attempt(await socketOffer(a.url, identity(), flip), flooder)).toEqual({ status: 429, code: 'auth_rate_limited' });
    // Everyone else logs in as usual, on this node and the other.
    expect(await attempt(await socketOffer(a.url, identity()))).toEqual({ status: 101 });
    expect(await attempt(await socketOffer(b.url, identity()), flooder)).toEqual({ status: 101 });
    const limited = statuses.filter((s) => s === 429).length + 2;
    expect(await a.context.metrics.registry.metrics()).toContain(`backchannel_errors_total{code="auth_rate_limited"} ${limited}`);
  });
});
