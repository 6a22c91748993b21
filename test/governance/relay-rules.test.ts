import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { invitationKeys, newInviteSecret, signRedeem, type PushFrame } from '@backchannel/client-sdk';
import { BackchannelError, fromBase64Url, toBase64Url, type Charter, type GroupProposal } from '@backchannel/client-sdk/protocol';
import { createInvite, proposalOnHead, rawCharter, readGroup, signAs, signChange } from '../../bench/src/raw-group.js';
import { inviteAndRedeem, openChannel, rawMember, type RawMember } from '../support/members.js';
import { startTestRelay, type TestRelay } from '../support/relay.js';

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (BackchannelError.is(err)) return err.code;
    throw err;
  }
  throw new Error('expected the request to fail');
}

const envelope = (to: RawMember[], id: string) => ({
  type: 'send' as const,
  channel: '',
  clientMsgId: id,
  headers: Object.fromEntries(to.map((m) => [m.key, toBase64Url(new Uint8Array(16))])),
  body: toBase64Url(new Uint8Array(32)),
  commitment: toBase64Url(new Uint8Array(32)),
});

describe('governance rules enforced by the relay (a first line of defence; clients verify again)', () => {
  let relay: TestRelay;
  const closers: RawMember[] = [];

  beforeAll(async () => {
    relay = await startTestRelay();
  });
  afterAll(async () => {
    for (const m of closers) await m.conn.close();
    await relay.close();
  });

  async function channelWith(n: number, memberCap = 8, over: Partial<Charter> = {}) {
    const ch = await openChannel(relay.url, n, memberCap, over);
    closers.push(ch.host, ...ch.parties);
    return ch;
  }

  it('refuses a redemption beyond the charter member cap with channel_full', async () => {
    const ch = await channelWith(2, 3);
    const late = await rawMember(relay.url);
    closers.push(late);
    expect(await code(inviteAndRedeem(ch.host, ch.channel, late))).toBe('channel_full');
  });

  it('refuses a second redemption with invite_used, an expired one with invite_expired, an unknown or unsigned one with invite_invalid', async () => {
    const ch = await channelWith(2);
    const secret = await createInvite(ch.host, ch.channel);
    const [a, b] = [await rawMember(relay.url), await rawMember(relay.url)];
    closers.push(a, b);
    const redeemAs = async (who: RawMember, s: Uint8Array, signWith = s) => {
      const keys = invitationKeys(s);
      const proof = await signRedeem({ channel: ch.channel, inviteKey: keys.publicKey, memberKey: who.dh.publicKey, memberSignKey: who.sign.publicKey }, invitationKeys(signWith).secretKey);
      await who.conn.connect();
      return who.conn.request({ type: 'invite.redeem', channel: ch.channel, invite: toBase64Url(keys.publicKey), signKey: toBase64Url(who.sign.publicKey), proof: toBase64Url(proof) });
    };
    // Without the secret (the relay's position) a redemption cannot be signed.
    expect(await code(redeemAs(a, secret, newInviteSecret()))).toBe('invite_invalid');
    await redeemAs(a, secret);
    expect(await code(redeemAs(b, secret))).toBe('invite_used');

    const shortLived = await createInvite(ch.host, ch.channel, 'party', 150);
    await new Promise((r) => setTimeout(r, 300));
    expect(await code(redeemAs(b, shortLived))).toBe('invite_expired');
    expect(await code(redeemAs(b, newInviteSecret()))).toBe('invite_invalid');
  });

  it('appends an admission only once every party signed it; host, pending observer, bad and stale signatures are refused', async () => {
    const ch = await channelWith(2);
    const [alice, bob] = ch.parties as [RawMember, RawMember];
    const carol = await rawMember(relay.url);
    const watcher = await rawMember(relay.url);
    closers.push(carol, watcher);
    await inviteAndRedeem(ch.host, ch.channel, carol);
    await inviteAndRedeem(ch.host, ch.channel, watcher, 'observer');
    const seat = (await readGroup(alice, ch.channel)).pending.find((s) => s.key === carol.key)!;
    const add = await proposalOnHead(alice, ch.channel, { kind: 'add', member: seat });
    const sign = (who: RawMember, proposal = add, sigBy = who) =>
      signAs(sigBy, ch.channel, proposal).then((sig) => who.conn.request({ type: 'group.sign', channel: ch.channel, proposal, sig }));

    expect(await code(sign(ch.host))).toBe('group_signature');
    expect(await code(sign(watcher))).toBe('group_signature'); // a pending observer signs nothing
    expect(await code(sign(alice, add, bob))).toBe('group_signature'); // Bob's signature sent as Alice's
    expect(await code(sign(alice, { ...add, epoch: add.epoch + 1 }))).toBe('group_stale');
    expect(await code(sign(alice, { ...add, change: { kind: 'add', member: { ...seat, role: 'observer' } } }))).toBe('member_not_found'); // not the seat Carol redeemed

    await sign(alice);
    expect((await readGroup(alice, ch.channel)).pending.map((s) => s.key)).toContain(carol.key);
    expect(await code(carol.conn.request({ ...envelope([alice], 'c1'), channel: ch.channel }))).toBe('not_member');
    expect(await code(alice.conn.request({ ...envelope([carol], 'a1'), channel: ch.channel }))).toBe('recipient_not_member');

    await sign(bob);
    const { entries, pending } = await readGroup(alice, ch.channel);
    const last = entries.at(-1)!;
    expect(last.change).toEqual({ kind: 'add', member: seat });
    expect(last.sigs.map((s) => s.by).sort()).toEqual([alice.key, bob.key].sort());
    expect(pending.map((s) => s.key)).not.toContain(carol.key);
    await alice.conn.request({ ...envelope([bob, carol], 'a2'), channel: ch.channel });
    // The same proposal again, after it landed, builds on a superseded state.
    expect(await code(sign(alice))).toBe('group_stale');
  });

  it('cuts a member who leaves, pushes the signed leave, and refuses to carry anything to it afterwards', async () => {
    const ch = await channelWith(3);
    const [alice, bob, carol] = ch.parties as [RawMember, RawMember, RawMember];
    const pushes: PushFrame[] = [];
    alice.conn.onPush((f) => pushes.push(f));
    expect(await code(signChange(alice, ch.channel, { kind: 'leave', member: carol.key }))).toBe('group_signature'); // only Carol can say she left
    await signChange(carol, ch.channel, { kind: 'leave', member: carol.key });
    await expect.poll(() => carol.conn.state).toBe('closed');
    expect(await code(alice.conn.request({ ...envelope([bob, carol], 'x'), channel: ch.channel }))).toBe('recipient_not_member');
    await expect.poll(() => pushes.some((p) => p.type === 'group' && p.entries.some((e) => e.change.kind === 'leave' && e.change.member === carol.key))).toBe(true);
  });

  it('removes a member once every other party signed; the host alone only where the charter allows', async () => {
    const ch = await channelWith(3);
    const [alice, bob, carol] = ch.parties as [RawMember, RawMember, RawMember];
    const remove = { kind: 'remove' as const, member: carol.key };
    expect(await code(signChange(ch.host, ch.channel, remove))).toBe('group_signature');
    expect(await code(signChange(carol, ch.channel, remove))).toBe('group_signature'); // not hers to sign
    const proposal = await proposalOnHead(alice, ch.channel, remove);
    await alice.conn.request({ type: 'group.sign', channel: ch.channel, proposal, sig: await signAs(alice, ch.channel, proposal) });
    expect((await readGroup(alice, ch.channel)).entries.at(-1)!.change.kind).toBe('found');
    await bob.conn.request({ type: 'group.sign', channel: ch.channel, proposal, sig: await signAs(bob, ch.channel, proposal) });
    await expect.poll(() => carol.conn.state).toBe('closed');
    expect((await readGroup(alice, ch.channel)).entries.at(-1)!.change).toEqual(remove);

    const ch2 = await channelWith(2, 8, { hostMayRemove: true });
    const [, victim] = ch2.parties as [RawMember, RawMember];
    await signChange(ch2.host, ch2.channel, { kind: 'remove', member: victim.key });
    await expect.poll(() => victim.conn.state).toBe('closed');
  });

  it('applies a charter amendment only when every party signed the same charter', async () => {
    const ch = await channelWith(2);
    const [alice, bob] = ch.parties as [RawMember, RawMember];
    const amend = (c: Partial<Charter>) => ({ kind: 'charter' as const, charter: rawCharter(8, c) });
    const retention = async () => {
      const state = (await relay.context.cache.get(ch.channel))!;
      return state.group!.charter.retentionSec;
    };
    const p120 = await proposalOnHead(alice, ch.channel, amend({ retentionSec: 120 }));
    await alice.conn.request({ type: 'group.sign', channel: ch.channel, proposal: p120, sig: await signAs(alice, ch.channel, p120) });
    expect(await retention()).toBe(7 * 86_400);
    await signChange(bob, ch.channel, amend({ retentionSec: 240 }));
    expect(await retention()).toBe(7 * 86_400);
    await bob.conn.request({ type: 'group.sign', channel: ch.channel, proposal: p120, sig: await signAs(bob, ch.channel, p120) });
    expect(await retention()).toBe(120);
    expect(await code(signChange(ch.host, ch.channel, amend({})))).toBe('group_signature');
    expect(await code(signChange(alice, ch.channel, { kind: 'charter', charter: rawCharter(2) }))).toBe('charter_invalid');
  });

  it('purges ciphertext past the charter retention, keeps the receipts, and tells the sender what expired undelivered', async () => {
    const ch = await channelWith(2, 8, { retentionSec: 60 });
    const [alice, bob] = ch.parties as [RawMember, RawMember];
    for (let i = 0; i < 5; i++) await alice.conn.request({ ...envelope([bob], `r${i}`), channel: ch.channel });
    const pushes: PushFrame[] = [];
    alice.conn.onPush((f) => pushes.push(f));
    alice.conn.subscribe(ch.channel, { after: () => 0, deliver: async () => undefined });
    const id = fromBase64Url(ch.channel)!;
    const count = async (table: 'messages' | 'receipts') =>
      Number((await relay.context.db.kysely.selectFrom(table).select((eb) => eb.fn.countAll<string>().as('n')).where('channel_id', '=', id).executeTakeFirstOrThrow()).n);
    expect(await relay.sweepRetention(Date.now())).toBe(0);
    expect(await count('messages')).toBe(5);
    await relay.sweepRetention(Date.now() + 61_000);
    expect(await count('messages')).toBe(0);
    expect(await count('receipts')).toBe(5);
    await expect.poll(() => pushes.find((p) => p.type === 'expired')).toMatchObject({ type: 'expired', clientMsgIds: ['r0', 'r1', 'r2', 'r3', 'r4'] });
  });

  it('dissolves at any party\'s signature: no ciphertext, prekeys, invitations or receipts remain; the signed log does', async () => {
    const ch = await channelWith(2);
    const [alice, bob] = ch.parties as [RawMember, RawMember];
    for (let i = 0; i < 3; i++) await alice.conn.request({ ...envelope([bob], `d${i}`), channel: ch.channel });
    await createInvite(ch.host, ch.channel);
    const pushes: PushFrame[] = [];
    bob.conn.onPush((f) => pushes.push(f));
    expect(await code(signChange(ch.host, ch.channel, { kind: 'dissolve' }))).toBe('group_signature');
    await signChange(alice, ch.channel, { kind: 'dissolve' });
    await expect.poll(() => bob.conn.state).toBe('closed');
    expect(pushes.some((p) => p.type === 'group' && p.entries.some((e) => e.change.kind === 'dissolve'))).toBe(true);
    const id = fromBase64Url(ch.channel)!;
    for (const table of ['messages', 'receipts', 'signed_prekeys', 'one_time_prekeys', 'invites', 'group_signatures'] as const) {
      const rows = await relay.context.db.kysely.selectFrom(table).select((eb) => eb.fn.countAll<string>().as('n')).where('channel_id', '=', id).executeTakeFirstOrThrow();
      expect(Number(rows.n), table).toBe(0);
    }
    const log = await relay.context.db.kysely.selectFrom('group_log').select('epoch').where('channel_id', '=', id).execute();
    expect(log.map((r) => r.epoch)).toEqual([0, 1, 2]);
  });

  it('refuses malformed, foreign-channel and wrongly signed changes, storing nothing', async () => {
    const ch = await channelWith(2);
    const other = await channelWith(2);
    const [alice] = ch.parties as [RawMember, RawMember];
    const before = await readGroup(alice, ch.channel);
    const proposal = await proposalOnHead(alice, ch.channel, { kind: 'dissolve' });
    // Signed for another channel: the statement binds the channel id.
    expect(await code(alice.conn.request({ type: 'group.sign', channel: ch.channel, proposal, sig: await signAs(alice, other.channel, proposal) }))).toBe('group_signature');
    // A malformed change never reaches a handler.
    expect(await code(alice.conn.request({ type: 'group.sign', channel: ch.channel, proposal: { ...proposal, change: { kind: 'promote' } } as unknown as GroupProposal, sig: await signAs(alice, ch.channel, proposal) }))).toBe('bad_frame');
    const after = await readGroup(alice, ch.channel);
    expect(after.entries).toEqual(before.entries);
    const rows = await relay.context.db.kysely.selectFrom('group_signatures').select('signer_key').where('channel_id', '=', fromBase64Url(ch.channel)!).execute();
    expect(rows).toEqual([]);
  });
});
