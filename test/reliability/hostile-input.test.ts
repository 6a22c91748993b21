import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { sodium } from '@backchannel/client-sdk';
import { CLOSE_CODES, SUBPROTOCOL, toBase64Url, type RelayFrameOf } from '@backchannel/client-sdk/protocol';
import { tableCounts } from '../support/load.js';
import { openChannel, type OpenChannel, type RawMember } from '../support/members.js';
import { startTestRelay, type TestRelay } from '../support/relay.js';
import { Bystanders } from './support/bystanders.js';
import { RawClient, socketOffer } from './support/raw-client.js';

// Issue #2's hostile-input list, one test each: the answer's code, the bystanders unharmed, and
// not one row added or changed in any table.
describe('hostile input (issue #2)', () => {
  let relay: TestRelay;
  let chA: OpenChannel;
  let chB: OpenChannel;
  let bystanders: Bystanders;
  let before: Record<string, number>;
  const clients: RawClient[] = [];

  const open = async (who?: RawMember): Promise<RawClient> => {
    const c = await RawClient.open(relay.url, who?.dh);
    clients.push(c);
    return c;
  };
  const sendFrame = (channel: string, to: string, rid = 1) => ({
    type: 'send',
    rid,
    channel,
    clientMsgId: `hostile-${rid}`,
    headers: { [to]: toBase64Url(new Uint8Array(8)) },
    body: toBase64Url(new Uint8Array(8)),
    commitment: toBase64Url(new Uint8Array(32)),
  });
  const errorOf = async (c: RawClient): Promise<RelayFrameOf<'error'>> => {
    await c.waitFrames(1);
    const e = c.ofType('error')[0];
    if (e === undefined) throw new Error(`no error frame; got ${JSON.stringify(c.frames)} close ${c.closeCode}`);
    return e;
  };

  beforeAll(async () => {
    relay = await startTestRelay({ BACKCHANNEL_LOG_LEVEL: 'warn', BACKCHANNEL_MAX_PAYLOAD: '65536' });
    chA = await openChannel(relay.url, 3);
    chB = await openChannel(relay.url, 2);
    bystanders = new Bystanders(chA);
    await bystanders.start();
  }, 60_000);
  beforeEach(async () => {
    before = await tableCounts(relay.databaseUrl);
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await bystanders?.close();
    for (const ch of [chA, chB]) for (const m of [ch.host, ...ch.parties]) await m.conn.close();
    await relay?.close();
  });

  /** Nothing stored, and the bystanders still talk (their own message is stored after the check). */
  const unharmed = async (): Promise<void> => {
    expect(await tableCounts(relay.databaseUrl)).toEqual(before);
    await bystanders.works();
  };

  it('answers malformed JSON with bad_json', async () => {
    const c = await open();
    c.sendRaw('{"type":"send", "rid": 1,');
    expect((await errorOf(c)).code).toBe('bad_json');
    await unharmed();
  });

  it('answers an unknown frame type with bad_frame, echoing the rid', async () => {
    const c = await open();
    c.send({ type: 'channel.seize', rid: 41 });
    const e = await errorOf(c);
    expect(e.code).toBe('bad_frame');
    expect(e.rid).toBe(41);
    await unharmed();
  });

  it('answers wrong field types with bad_frame and the request rid', async () => {
    const c = await open(chA.parties[2]);
    c.send({ ...sendFrame(chA.channel, chA.parties[0]!.key, 42), body: 12345, headers: ['not', 'a', 'map'] });
    const e = await errorOf(c);
    expect(e.code).toBe('bad_frame');
    expect(e.rid).toBe(42);
    await unharmed();
  });

  it('closes an oversized frame with 1009 before parsing it', async () => {
    const c = await open(chA.parties[2]);
    c.send({ ...sendFrame(chA.channel, chA.parties[0]!.key, 43), body: 'A'.repeat(70_000) });
    expect(await c.closed).toBe(CLOSE_CODES.tooLarge);
    expect(c.frames).toEqual([]);
    await unharmed();
  });

  it('refuses an upgrade with a bad Diffie-Hellman answer (or none) with HTTP 401 and no socket', async () => {
    const kp = sodium.crypto_box_keypair();
    const id = { publicKey: kp.publicKey, secretKey: kp.privateKey };
    const bad = await socketOffer(relay.url, id, (proof) => proof.map((b, i) => (i === 0 ? b ^ 1 : b)));
    const none = { ...(await socketOffer(relay.url, id)), protocols: [SUBPROTOCOL] };
    for (const offer of [bad, none]) {
      const status = await new Promise<number>((resolve) => {
        const ws = new WebSocket(offer.url, offer.protocols);
        ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.once('open', () => resolve(101));
        ws.once('error', () => resolve(-1));
      });
      expect(status).toBe(401);
    }
    await unharmed();
  });

  it('answers a non-member sending to a channel with not_member', async () => {
    const c = await open();
    c.send(sendFrame(chA.channel, chA.parties[0]!.key, 44));
    const e = await errorOf(c);
    expect(e.code).toBe('not_member');
    expect(e.rid).toBe(44);
    await unharmed();
  });

  it('answers a member of channel A subscribing to or sending to channel B with not_member', async () => {
    const c = await open(chA.parties[2]);
    c.send({ type: 'subscribe', rid: 45, channel: chB.channel, after: 0 });
    c.send(sendFrame(chB.channel, chB.parties[0]!.key, 46));
    await c.waitFrames(2);
    expect(c.ofType('error').map((e) => [e.rid, e.code]).sort()).toEqual([
      [45, 'not_member'],
      [46, 'not_member'],
    ]);
    expect(c.ofType('deliver')).toEqual([]);
    await unharmed();
  });

  it('answers a send to a recipient who is not a member with recipient_not_member', async () => {
    const c = await open(chA.parties[2]);
    c.send(sendFrame(chA.channel, chB.parties[0]!.key, 47));
    const e = await errorOf(c);
    expect(e.code).toBe('recipient_not_member');
    expect(e.rid).toBe(47);
    await unharmed();
  });

  it('answers a host trying to send with wrong_role', async () => {
    const c = await open(chA.host);
    c.send(sendFrame(chA.channel, chA.parties[0]!.key, 48));
    const e = await errorOf(c);
    expect(e.code).toBe('wrong_role');
    expect(e.rid).toBe(48);
    await unharmed();
  });
});
