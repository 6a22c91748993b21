import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import WebSocket from 'ws';
import { CLOSE_CODES, ClientFrame, SUBPROTOCOL, authSubprotocol, toBase64Url, type ErrorCode } from '@backchannel/client-sdk/protocol';
import { tableCounts } from '../support/load.js';
import { openChannel, type OpenChannel } from '../support/members.js';
import { startTestRelay, type TestRelay } from '../support/relay.js';
import { Bystanders } from './support/bystanders.js';
import { RawClient } from './support/raw-client.js';
import { figures, LONG } from './support/scenario.js';

// Fuzzing the wire protocol from an authenticated non-member. CI: 5,000 frames; BC_LONG=1: 100,000.
const FRAMES = LONG ? 100_000 : 5_000;
/** Frames per socket: below the relay's 100-strike limit, so the fuzz measures answers, not closes. */
const PER_SOCKET = 50;

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Input = { kind: 'text'; text: string } | { kind: 'binary'; bytes: Uint8Array };

/** The relay's rid extraction, restated: a bad frame's error echoes a well-formed rid only. */
function ridOf(raw: unknown): number | undefined {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw) || !('rid' in raw)) return undefined;
  const rid = (raw as { rid: unknown }).rid;
  return typeof rid === 'number' && Number.isInteger(rid) && rid >= 0 && rid <= 0xffff_ffff ? rid : undefined;
}

/** What the relay must answer: a frame-level code (and rid), or "some refusal" for a well-formed frame. */
function oracle(input: Input): { code: ErrorCode | 'refusal'; rid: number | undefined } {
  if (input.kind === 'binary') return { code: 'bad_frame', rid: undefined };
  let raw: unknown;
  try {
    raw = JSON.parse(input.text);
  } catch {
    return { code: 'bad_json', rid: undefined };
  }
  if (!ClientFrame.safeParse(raw).success) return { code: 'bad_frame', rid: ridOf(raw) };
  return { code: 'refusal', rid: ridOf(raw) };
}

/** Codes a well-formed frame from a non-member may earn: every one a refusal, never `internal`. */
const REFUSALS = new Set<string>(['not_member', 'channel_not_found', 'invite_invalid', 'wrong_role', 'member_not_found', 'bad_frame', 'group_stale', 'group_signature', 'prekey_signature_invalid']);

function deep(depth: number): Json {
  let v: Json = 1;
  for (let i = 0; i < depth; i++) v = i % 2 === 0 ? [v] : { a: v };
  return v;
}

describe('fuzzing the wire protocol', () => {
  let relay: TestRelay;
  let ch: OpenChannel;
  let bystanders: Bystanders;

  beforeAll(async () => {
    relay = await startTestRelay({ BACKCHANNEL_LOG_LEVEL: 'warn', BACKCHANNEL_RATE_PER_SEC: '100000', BACKCHANNEL_RATE_BURST: '100000' });
    ch = await openChannel(relay.url, 2);
    bystanders = new Bystanders(ch);
    await bystanders.start();
  }, 60_000);
  afterAll(async () => {
    await bystanders?.close();
    await ch?.host.conn.close();
    await relay?.close();
  });

  it(`answers ${FRAMES.toLocaleString('en')} random and mutated frames each with its error code, stores nothing, and keeps serving`, { timeout: LONG ? 1_800_000 : 120_000 }, async () => {
    const b64 = (n: number): string => toBase64Url(new Uint8Array(n).fill(7));
    const bases: Record<string, Json>[] = [
      { type: 'send', rid: 1, channel: ch.channel, clientMsgId: 'fz', headers: { [ch.parties[0]!.key]: b64(8) }, body: b64(16), commitment: b64(32) },
      { type: 'subscribe', rid: 2, channel: ch.channel, after: 0 },
      { type: 'ack', channel: ch.channel, seq: 1 },
      { type: 'group.get', rid: 3, channel: ch.channel, from: 0 },
      { type: 'prekeys.fetch', rid: 4, channel: ch.channel, member: ch.parties[0]!.key },
      { type: 'prekeys.publish', rid: 5, channel: ch.channel, signedPrekey: { id: 1, key: b64(32), sig: b64(64) }, oneTimePrekeys: [{ id: 2, key: b64(32) }] },
      { type: 'invite.create', rid: 6, channel: ch.channel, invite: { key: b64(32), role: 'party', expiresAt: Date.now() + 60_000, sig: b64(64) } },
      { type: 'invite.redeem', rid: 7, channel: ch.channel, invite: b64(32), signKey: b64(32), proof: b64(64) },
      { type: 'group.sign', rid: 8, channel: ch.channel, proposal: { epoch: 2, prev: b64(32), change: { kind: 'remove', member: ch.parties[1]!.key } }, sig: b64(64) },
    ];
    const hostile = fc.oneof(
      fc.jsonValue() as fc.Arbitrary<Json>,
      fc.constantFrom<Json>(1e308, -1, 2 ** 53, -0, 0.5, 0xffff_ffff + 1, '', 'x'.repeat(5000), [], {}),
      fc.integer({ min: 1, max: 3000 }).map(deep),
    );
    const mutated = fc
      .tuple(fc.constantFrom(...bases), fc.nat(), hostile, fc.constantFrom('set', 'drop', 'extra', 'type', 'none'), fc.string())
      .map(([base, pick, value, op, name]): Json => {
        const frame: Record<string, Json> = { ...base };
        const keys = Object.keys(frame);
        const key = keys[pick % keys.length]!;
        if (op === 'set') frame[key] = value;
        else if (op === 'drop') delete frame[key];
        else if (op === 'extra') frame[name === '' ? '_' : name] = value;
        else if (op === 'type') frame.type = typeof value === 'string' ? value : name;
        return frame;
      });
    const input: fc.Arbitrary<Input> = fc.oneof(
      { weight: 6, arbitrary: mutated.map((f): Input => ({ kind: 'text', text: JSON.stringify(f) })) },
      { weight: 1, arbitrary: (fc.jsonValue() as fc.Arbitrary<Json>).map((v): Input => ({ kind: 'text', text: JSON.stringify(v) ?? 'null' })) },
      { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 300 }).map((text): Input => ({ kind: 'text', text })) },
      { weight: 1, arbitrary: mutated.map((f): Input => ({ kind: 'text', text: JSON.stringify(f).slice(0, -1 - (JSON.stringify(f).length % 7)) })) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 300 }).map((bytes): Input => ({ kind: 'binary', bytes })) },
    );

    const before = await tableCounts(relay.databaseUrl);
    let client: RawClient | undefined;
    let used = 0;
    const codes: Record<string, number> = {};
    await fc.assert(
      fc.asyncProperty(input, async (inp) => {
        if (client === undefined || used >= PER_SOCKET || client.closeCode !== undefined) {
          client?.close();
          client = await RawClient.open(relay.url);
          used = 0;
        }
        used++;
        const seen = client.frames.length;
        if (inp.kind === 'binary') client.sendRaw(inp.bytes, true);
        else client.sendRaw(inp.text);
        await client.waitFrames(seen + 1, 5_000);
        const answer = client.frames[seen];
        const want = oracle(inp);
        expect(client.closeCode).toBeUndefined();
        expect(client.garbage).toEqual([]);
        expect(answer?.type).toBe('error');
        if (answer?.type !== 'error') return;
        codes[answer.code] = (codes[answer.code] ?? 0) + 1;
        if (want.code === 'refusal') expect(REFUSALS.has(answer.code), answer.code).toBe(true);
        else expect(answer.code).toBe(want.code);
        expect(answer.rid).toBe(want.rid);
      }),
      { numRuns: FRAMES },
    );
    client?.close();

    const health = await fetch(`${relay.url}/healthz`);
    figures('fuzz', { frames: FRAMES, codes });
    expect(health.status).toBe(200);
    expect(await tableCounts(relay.databaseUrl)).toEqual(before);
    await bystanders.works();
  });

  it('closes a text frame of invalid UTF-8 with 1007', async () => {
    const c = await RawClient.open(relay.url);
    c.sendRaw(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), false);
    expect(await c.closed).toBe(1007);
    await bystanders.works();
  });

  it('closes frames over maxPayload with 1009', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 64 * 1024 + 1, max: 1024 * 1024 }), fc.boolean(), async (size, binary) => {
        const c = await RawClient.open(relay.url);
        c.sendRaw(new Uint8Array(size).fill(0x41), binary);
        expect(await c.closed).toBe(CLOSE_CODES.tooLarge);
      }),
      { numRuns: 10 },
    );
    await bystanders.works();
  });

  it('refuses random upgrade credentials with HTTP 401 and no socket', async () => {
    await fc.assert(
      fc.asyncProperty(fc.base64String(), fc.base64String(), fc.base64String(), async (key, nonce, proof) => {
        const url = new URL('/v1/ws', relay.url.replace('http', 'ws'));
        const credentials = authSubprotocol({ key: key.replace(/[+/=]/g, '-'), nonce: nonce.replace(/[+/=]/g, '_'), proof: proof.replace(/[+/=]/g, 'A') });
        const status = await new Promise<number>((resolve) => {
          const ws = new WebSocket(url, [SUBPROTOCOL, credentials]);
          ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
          ws.once('open', () => resolve(101));
          ws.once('error', () => resolve(-1));
        });
        expect(status).toBe(401);
      }),
      { numRuns: 200 },
    );
    await bystanders.works();
  });
});

describe('floods', () => {
  let relay: TestRelay;
  let bystanders: Bystanders;
  let ch: OpenChannel;

  beforeAll(async () => {
    relay = await startTestRelay({ BACKCHANNEL_LOG_LEVEL: 'warn', BACKCHANNEL_RATE_PER_SEC: '20', BACKCHANNEL_RATE_BURST: '10' });
    ch = await openChannel(relay.url, 2);
    bystanders = new Bystanders(ch);
    await bystanders.start();
  }, 60_000);
  afterAll(async () => {
    await bystanders?.close();
    await ch?.host.conn.close();
    await relay?.close();
  });

  it('answers frames past the rate limit with rate_limited, then closes with 4002; others are unaffected', async () => {
    const before = await tableCounts(relay.databaseUrl);
    const c = await RawClient.open(relay.url);
    for (let i = 0; i < 300; i++) c.send({ type: 'group.get', rid: i, channel: ch.channel, from: 0 });
    expect(await c.closed).toBe(CLOSE_CODES.policyViolation);
    const codes = c.ofType('error').map((e) => e.code);
    expect(codes.filter((x) => x === 'rate_limited').length).toBeGreaterThanOrEqual(90);
    expect(codes.filter((x) => x !== 'rate_limited' && x !== 'not_member')).toEqual([]);
    expect(await tableCounts(relay.databaseUrl)).toEqual(before);
    await bystanders.works();
  });
});
