import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inviteSecretHash, newInviteSecret, signApproval, type PushFrame } from '@backchannel/client-sdk';
import { BackchannelError, fromBase64Url, toBase64Url, type Charter } from '@backchannel/client-sdk/protocol';
import { approveMember, inviteAndRedeem, openChannel, rawMember, type RawMember } from '../support/members.js';
import { startTestRelay, type TestRelay } from '../support/relay.js';

const charter = (over: Partial<Charter> = {}): Charter => ({
  purpose: '',
  memberCap: 8,
  retentionSec: 3600,
  disappearSec: null,
  disclosureRule: 'unanimous',
  hostMayRemove: false,
  ...over,
});

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

describe('governance rules enforced by the relay', () => {
  let relay: TestRelay;
  const closers: RawMember[] = [];

  beforeAll(async () => {
    relay = await startTestRelay();
  });
  afterAll(async () => {
    for (const m of closers) await m.conn.close();
    await relay.close();
  });

  async function channelWith(n: number, over: Partial<Charter> = {}) {
    const ch = await openChannel(relay.url, n, over.memberCap ?? 8);
    closers.push(ch.host, ...ch.parties);
    if (Object.keys(over).length > 0 && over.memberCap === undefined) {
      for (const p of ch.parties) await p.conn.request({ type: 'charter.amend', channel: ch.channel, charter: charter(over) });
    }
    return ch;
  }

  it('refuses a redemption beyond the charter member cap with channel_full', async () => {
    const ch = await channelWith(2, { memberCap: 3 });
    const late = await rawMember(relay.url);
    closers.push(late);
    expect(await code(inviteAndRedeem(ch.host, ch.channel, late))).toBe('channel_full');
  });

  it('refuses a second redemption of one invitation with invite_used, and an expired one with invite_expired', async () => {
    const ch = await channelWith(2);
    const secret = newInviteSecret();
    await ch.host.conn.request({ type: 'invite.create', channel: ch.channel, secretHash: toBase64Url(inviteSecretHash(secret)), role: 'party', expiresAt: Date.now() + 60_000 });
    const [a, b] = [await rawMember(relay.url), await rawMember(relay.url)];
    closers.push(a, b);
    await a.conn.connect();
    await b.conn.connect();
    await a.conn.request({ type: 'invite.redeem', channel: ch.channel, secret: toBase64Url(secret), signKey: toBase64Url(a.sign.publicKey) });
    expect(await code(b.conn.request({ type: 'invite.redeem', channel: ch.channel, secret: toBase64Url(secret), signKey: toBase64Url(b.sign.publicKey) }))).toBe('invite_used');

    const shortLived = newInviteSecret();
    await ch.host.conn.request({ type: 'invite.create', channel: ch.channel, secretHash: toBase64Url(inviteSecretHash(shortLived)), role: 'party', expiresAt: Date.now() + 150 });
    await new Promise((r) => setTimeout(r, 300));
    expect(await code(b.conn.request({ type: 'invite.redeem', channel: ch.channel, secret: toBase64Url(shortLived), signKey: toBase64Url(b.sign.publicKey) }))).toBe('invite_expired');
    expect(await code(b.conn.request({ type: 'invite.redeem', channel: ch.channel, secret: toBase64Url(newInviteSecret()), signKey: toBase64Url(b.sign.publicKey) }))).toBe('invite_invalid');
  });

  it('admits a member only once every active party approved it; host, observer and bad signatures cannot approve', async () => {
    const ch = await channelWith(2);
    const [alice, bob] = ch.parties as [RawMember, RawMember];
    const carol = await rawMember(relay.url);
    const watcher = await rawMember(relay.url);
    closers.push(carol, watcher);
    await inviteAndRedeem(ch.host, ch.channel, carol);
    await inviteAndRedeem(ch.host, ch.channel, watcher, 'observer');

    expect(await code(approveMember(ch.host, ch.channel, carol))).toBe('wrong_role');
    expect(await code(approveMember(watcher, ch.channel, carol))).toBe('not_member'); // a pending observer is not active
    const forged = await signApproval({ channel: fromBase64Url(ch.channel)!, memberKey: carol.dh.publicKey, memberSignKey: carol.sign.publicKey, rosterVersion: 999 }, alice.sign.secretKey);
    expect(await code(alice.conn.request({ type: 'member.approve', channel: ch.channel, member: carol.key, sig: toBase64Url(forged) }))).toBe('approval_invalid');

    await approveMember(alice, ch.channel, carol);
    const pending = await alice.conn.request({ type: 'roster.get', channel: ch.channel });
    expect(pending.members.find((m) => m.key === carol.key)?.status).toBe('pending');
    expect(await code(carol.conn.request({ ...envelope([alice], 'c1'), channel: ch.channel }))).toBe('not_member');
    expect(await code(alice.conn.request({ ...envelope([carol], 'a1'), channel: ch.channel }))).toBe('recipient_not_member');

    await approveMember(bob, ch.channel, carol);
    const after = await alice.conn.request({ type: 'roster.get', channel: ch.channel });
    expect(after.members.find((m) => m.key === carol.key)?.status).toBe('active');
    expect(after.members.find((m) => m.key === carol.key)?.approvals.map((a) => a.by).sort()).toEqual([alice.key, bob.key].sort());
    await alice.conn.request({ ...envelope([bob, carol], 'a2'), channel: ch.channel });
  });

  it('cuts a member who leaves, and refuses to carry anything to it afterwards', async () => {
    const ch = await channelWith(3);
    const [alice, bob, carol] = ch.parties as [RawMember, RawMember, RawMember];
    const pushes: PushFrame[] = [];
    alice.conn.onPush((f) => pushes.push(f));
    await carol.conn.request({ type: 'member.leave', channel: ch.channel });
    await expect.poll(() => carol.conn.state).toBe('closed');
    expect(await code(alice.conn.request({ ...envelope([bob, carol], 'x'), channel: ch.channel }))).toBe('recipient_not_member');
    await expect.poll(() => pushes.some((p) => p.type === 'roster' && p.members.some((m) => m.key === carol.key && m.status === 'left'))).toBe(true);
  });

  it('removes a member once every other party voted; the host may remove only where the charter allows', async () => {
    const ch = await channelWith(3);
    const [alice, bob, carol] = ch.parties as [RawMember, RawMember, RawMember];
    expect(await code(ch.host.conn.request({ type: 'member.remove', channel: ch.channel, member: carol.key }))).toBe('forbidden');
    await alice.conn.request({ type: 'member.remove', channel: ch.channel, member: carol.key });
    const mid = await alice.conn.request({ type: 'roster.get', channel: ch.channel });
    expect(mid.members.find((m) => m.key === carol.key)?.status).toBe('active');
    await bob.conn.request({ type: 'member.remove', channel: ch.channel, member: carol.key });
    await expect.poll(() => carol.conn.state).toBe('closed');
    const after = await alice.conn.request({ type: 'roster.get', channel: ch.channel });
    expect(after.members.find((m) => m.key === carol.key)?.status).toBe('removed');

    const ch2 = await channelWith(2, { hostMayRemove: true });
    const [, victim] = ch2.parties as [RawMember, RawMember];
    await ch2.host.conn.request({ type: 'member.remove', channel: ch2.channel, member: victim.key });
    await expect.poll(() => victim.conn.state).toBe('closed');
  });

  it('applies a charter amendment only when every active party voted for the same charter', async () => {
    const ch = await channelWith(2);
    const [alice, bob] = ch.parties as [RawMember, RawMember];
    await alice.conn.request({ type: 'charter.amend', channel: ch.channel, charter: charter({ retentionSec: 120 }) });
    expect((await alice.conn.request({ type: 'roster.get', channel: ch.channel })).charter.retentionSec).toBe(7 * 86_400);
    await bob.conn.request({ type: 'charter.amend', channel: ch.channel, charter: charter({ retentionSec: 240 }) });
    expect((await alice.conn.request({ type: 'roster.get', channel: ch.channel })).charter.retentionSec).toBe(7 * 86_400);
    await bob.conn.request({ type: 'charter.amend', channel: ch.channel, charter: charter({ retentionSec: 120 }) });
    expect((await alice.conn.request({ type: 'roster.get', channel: ch.channel })).charter.retentionSec).toBe(120);
    expect(await code(ch.host.conn.request({ type: 'charter.amend', channel: ch.channel, charter: charter() }))).toBe('wrong_role');
    expect(await code(alice.conn.request({ type: 'charter.amend', channel: ch.channel, charter: charter({ memberCap: 2 }) }))).toBe('charter_invalid');
  });

  it('purges ciphertext past the charter retention, keeps the receipts, and tells the sender what expired undelivered', async () => {
    const ch = await channelWith(2, { retentionSec: 60 });
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

  it('dissolves at any party\'s word: no ciphertext, prekeys, invitations or receipts of the channel remain', async () => {
    const ch = await channelWith(2);
    const [alice, bob] = ch.parties as [RawMember, RawMember];
    for (let i = 0; i < 3; i++) await alice.conn.request({ ...envelope([bob], `d${i}`), channel: ch.channel });
    await ch.host.conn.request({ type: 'invite.create', channel: ch.channel, secretHash: toBase64Url(inviteSecretHash(newInviteSecret())), role: 'party', expiresAt: Date.now() + 60_000 });
    const pushes: PushFrame[] = [];
    bob.conn.onPush((f) => pushes.push(f));
    expect(await code(ch.host.conn.request({ type: 'channel.dissolve', channel: ch.channel }))).toBe('wrong_role');
    await alice.conn.request({ type: 'channel.dissolve', channel: ch.channel });
    await expect.poll(() => bob.conn.state).toBe('closed');
    expect(pushes.some((p) => p.type === 'channel.dissolved')).toBe(true);
    const id = fromBase64Url(ch.channel)!;
    for (const table of ['messages', 'receipts', 'signed_prekeys', 'one_time_prekeys', 'invites', 'approvals'] as const) {
      const rows = await relay.context.db.kysely.selectFrom(table).select((eb) => eb.fn.countAll<string>().as('n')).where('channel_id', '=', id).executeTakeFirstOrThrow();
      expect(Number(rows.n), table).toBe(0);
    }
  });
});
