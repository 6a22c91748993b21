/**
 * Prekey fetches (issue 14, item 1): one member cannot drain another's one-time prekeys, since
 * `prekeys.fetch` is bounded per channel and fetching member, while a member's first send (which
 * fetches every other member once) is never refused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addOneTimePrekeys, createPrekeyState, rotateSignedPrekey, sodiumReady } from '@backchannel/client-sdk';
import { fromBase64Url, toBase64Url } from '@backchannel/client-sdk/protocol';
import { openChannel, type OpenChannel, type RawMember } from '../support/members.js';
import { startTestRelay, type TestRelay } from '../support/relay.js';
import { codeOf } from '../support/sdk.js';

describe('prekey fetches are bounded per channel and fetching member', () => {
  let relay: TestRelay;
  let ch: OpenChannel;

  /** One-time prekeys the relay still holds for `member`. */
  async function stock(member: RawMember): Promise<number> {
    const row = await relay.context.db.kysely
      .selectFrom('one_time_prekeys')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .where('member_key', '=', fromBase64Url(member.key)!)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /** Publishes a signed prekey and 40 one-time prekeys for `m`, as a joining SDK client does. */
  async function publish(m: RawMember): Promise<void> {
    const keys = { dhPublic: m.key, dhSecret: toBase64Url(m.dh.secretKey), signPublic: toBase64Url(m.sign.publicKey), signSecret: toBase64Url(m.sign.secretKey) };
    const spk = await rotateSignedPrekey(createPrekeyState(), keys, ch.channel, Date.now());
    const otks = await addOneTimePrekeys(spk.state, 40);
    await m.conn.request({ type: 'prekeys.publish', channel: ch.channel, signedPrekey: spk.published, oneTimePrekeys: otks.published });
  }

  beforeAll(async () => {
    await sodiumReady();
    relay = await startTestRelay();
    ch = await openChannel(relay.url, 4);
    for (const p of ch.parties) await publish(p);
  });
  afterAll(async () => {
    for (const m of [ch.host, ...ch.parties]) await m.conn.close();
    await relay.close();
  });

  it('refuses a member draining another one’s one-time prekeys past the bound (rate_limited), leaving the stock for everyone else', async () => {
    const [mallory, bob, carol] = ch.parties as [RawMember, RawMember, RawMember, RawMember];
    expect(await stock(bob)).toBe(40);
    // The drained-prekeys case: 41 fetches in a burst used to take all 40 one-time prekeys.
    const codes = await Promise.all(Array.from({ length: 41 }, () => codeOf(mallory.conn.request({ type: 'prekeys.fetch', channel: ch.channel, member: bob.key }))));
    const members = 1 + ch.parties.length; // the host and four parties: the bucket's size
    expect(codes.filter((c) => c === 'ok')).toHaveLength(members);
    expect(codes.filter((c) => c === 'rate_limited')).toHaveLength(41 - members);
    expect(await stock(bob)).toBe(40 - members);
    // Another member's session start is unaffected: it still gets a one-time prekey.
    const bundle = await carol.conn.request({ type: 'prekeys.fetch', channel: ch.channel, member: bob.key });
    expect(bundle.oneTimePrekey).not.toBeNull();
  });

  it('lets a member fetch every other member once at its first send', async () => {
    const dave = ch.parties[3]!;
    const others = ch.parties.filter((p) => p !== dave);
    const bundles = await Promise.all(others.map((p) => dave.conn.request({ type: 'prekeys.fetch', channel: ch.channel, member: p.key })));
    expect(bundles.map((b) => b.member)).toEqual(others.map((p) => p.key));
    expect(bundles.every((b) => b.oneTimePrekey !== null)).toBe(true);
  });
});
