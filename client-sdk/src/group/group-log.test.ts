/**
 * applyEntry against hand-built signed entries: one test per rule of the group log, each
 * written so that it fails when that rule alone is disabled (a mutation review of
 * `group-log.ts`). Every refusal is checked for its code and its reason, and most are paired
 * with the genuine entry that the same state accepts, so the refusal is known to come from
 * that rule and not from a mistake in the test's own entry.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { BackchannelError, toBase64Url, type Charter, type GroupChange, type GroupEntry, type Seat } from '../protocol/index.js';
import { sodium, sodiumReady } from '../sodium.js';
import { signGrant, signGroupChange, signRedeem } from '../crypto/signatures.js';
import { invitationKeys, newInviteSecret } from '../invite.js';
import { GENESIS_PREV, applyEntry, partiesOf, proposalHash, statementOf, type GroupLogState } from './group-log.js';

interface Keys {
  readonly key: string;
  readonly signKey: string;
  readonly signSecret: Uint8Array;
}

function keys(): Keys {
  const sign = sodium.crypto_sign_keypair();
  return { key: toBase64Url(sodium.randombytes_buf(32)), signKey: toBase64Url(sign.publicKey), signSecret: sign.privateKey };
}

function charter(over: Partial<Charter> = {}): Charter {
  return { purpose: '', memberCap: 8, retentionSec: 7 * 86_400, disappearSec: null, disclosureRule: 'unanimous', hostMayRemove: false, ...over };
}

async function sign(channel: string, proposal: { epoch: number; prev: string; change: GroupChange }, by: Keys): Promise<{ by: string; sig: string }> {
  return { by: by.key, sig: toBase64Url(await signGroupChange(statementOf(channel, proposal), by.signSecret)) };
}

/** An entry of `change` signed by `signers`, on `state` (or at the given epoch and prev). */
async function entry(state: GroupLogState, change: GroupChange, signers: readonly Keys[], at: { epoch?: number; prev?: string } = {}): Promise<GroupEntry> {
  const proposal = { epoch: at.epoch ?? state.epoch + 1, prev: at.prev ?? state.stateHash, change };
  const sigs = [];
  for (const s of signers) sigs.push(await sign(state.channel, proposal, s));
  return { ...proposal, sigs };
}

async function genesisEntry(host: Keys, over: Partial<Charter> = {}, at: { epoch?: number; prev?: string } = {}): Promise<GroupEntry> {
  const channel = toBase64Url(sodium.randombytes_buf(16));
  const proposal = { epoch: at.epoch ?? 0, prev: at.prev ?? GENESIS_PREV, change: { kind: 'genesis' as const, channel, host: { key: host.key, signKey: host.signKey }, charter: charter(over) } };
  return { ...proposal, sigs: [await sign(channel, proposal, host)] };
}

/**
 * A seat for `who`: an invitation of `inviteRole` the `granter` (the host, normally) signed, and
 * `who`'s keys signed by that invitation's key. `role` is the role the seat claims.
 */
async function seat(channel: string, granter: Keys, who: Keys, role: 'party' | 'observer' = 'party', inviteRole: 'party' | 'observer' = role): Promise<Seat> {
  const invite = invitationKeys(newInviteSecret());
  const expiresAt = Date.now() + 600_000;
  const sig = await signGrant({ channel, inviteKey: invite.publicKey, role: inviteRole, expiresAt }, granter.signSecret);
  const proof = await signRedeem({ channel, inviteKey: invite.publicKey, memberKey: who.key, memberSignKey: who.signKey }, invite.secretKey);
  return { key: who.key, signKey: who.signKey, role, invite: { key: toBase64Url(invite.publicKey), role: inviteRole, expiresAt, sig: toBase64Url(sig) }, proof: toBase64Url(proof) };
}

/** The refusal `p` ends in: its code and message (a crash that is not a BackchannelError fails the test). */
async function refusal(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (err) {
    if (BackchannelError.is(err)) return { code: err.code, message: err.message };
    throw err;
  }
  throw new Error('expected the entry to be refused');
}

describe('applyEntry: every rule of the group log refuses what it must', () => {
  let host: Keys;
  let a: Keys;
  let b: Keys;
  let c: Keys;
  /** The genesis state: a host, no party. */
  let bare: GroupLogState;
  /** The host and two founding parties, a and b. */
  let founded: GroupLogState;

  async function open(over: Partial<Charter> = {}): Promise<{ bare: GroupLogState; founded: GroupLogState }> {
    const g = await applyEntry(undefined, await genesisEntry(host, over));
    const members = [await seat(g.channel, host, a), await seat(g.channel, host, b)].sort((x, y) => (x.key < y.key ? -1 : 1));
    const f = await applyEntry(g, await entry(g, { kind: 'found', members }, [a, b]));
    return { bare: g, founded: f };
  }

  beforeAll(async () => {
    await sodiumReady();
    [host, a, b, c] = [keys(), keys(), keys(), keys()];
    ({ bare, founded } = await open());
    expect(partiesOf(founded).sort()).toEqual([a.key, b.key].sort());
  });

  describe('the genesis', () => {
    it('accepts a genesis signed by its host at epoch 0 on the zero hash', async () => {
      const s = await applyEntry(undefined, await genesisEntry(host));
      expect(s.epoch).toBe(0);
      expect(s.members[host.key]?.role).toBe('host');
    });

    it('refuses a first entry that is not a genesis (group_invalid, not a crash)', async () => {
      const proposal = { epoch: 0, prev: GENESIS_PREV, change: { kind: 'dissolve' as const } };
      const e = { ...proposal, sigs: [await sign(bare.channel, proposal, host)] };
      expect(await refusal(applyEntry(undefined, e))).toEqual({ code: 'group_invalid', message: expect.stringMatching(/start with a genesis/) });
    });

    it('refuses a genesis, signed by its host, at another epoch than 0', async () => {
      expect((await refusal(applyEntry(undefined, await genesisEntry(host, {}, { epoch: 1 })))).code).toBe('group_invalid');
    });

    it('refuses a genesis, signed by its host, that builds on a state (prev not the zero hash)', async () => {
      const prev = toBase64Url(sodium.randombytes_buf(32));
      expect((await refusal(applyEntry(undefined, await genesisEntry(host, {}, { prev })))).code).toBe('group_invalid');
    });

    it('refuses a second genesis, even signed by the host', async () => {
      const second = await genesisEntry(host);
      const proposal = { epoch: founded.epoch + 1, prev: founded.stateHash, change: second.change };
      const e = { ...proposal, sigs: [await sign(founded.channel, proposal, host)] };
      expect(await refusal(applyEntry(founded, e))).toEqual({ code: 'group_invalid', message: 'a second genesis' });
    });
  });

  describe('epoch, chain and dissolution', () => {
    it('refuses an entry that skips an epoch, though it names the current state and every party signed it', async () => {
      const e = await entry(founded, { kind: 'dissolve' }, [a], { epoch: founded.epoch + 2 });
      expect((await refusal(applyEntry(founded, e))).code).toBe('group_stale');
      await expect(applyEntry(founded, await entry(founded, { kind: 'dissolve' }, [a]))).resolves.toMatchObject({ dissolved: true });
    });

    it('refuses an entry at the next epoch that builds on another state', async () => {
      const e = await entry(founded, { kind: 'dissolve' }, [a], { prev: toBase64Url(sodium.randombytes_buf(32)) });
      expect((await refusal(applyEntry(founded, e))).code).toBe('group_stale');
    });

    it('refuses every change after a dissolve, even one every party signed', async () => {
      const dissolved = await applyEntry(founded, await entry(founded, { kind: 'dissolve' }, [a]));
      const amend = await entry(dissolved, { kind: 'charter', charter: charter({ memberCap: 5 }) }, [a, b]);
      expect(await refusal(applyEntry(dissolved, amend))).toEqual({ code: 'group_invalid', message: 'the channel is dissolved' });
    });
  });

  describe('signatures', () => {
    let seatC: Seat;
    beforeAll(async () => {
      seatC = await seat(founded.channel, host, c);
    });

    it('accepts an add every party signed', async () => {
      const s = await applyEntry(founded, await entry(founded, { kind: 'add', member: seatC }, [a, b]));
      expect(partiesOf(s)).toContain(c.key);
    });

    it('refuses an add that lacks one party’s signature', async () => {
      const e = await entry(founded, { kind: 'add', member: seatC }, [a]);
      expect(await refusal(applyEntry(founded, e))).toEqual({ code: 'group_signature', message: expect.stringMatching(/lacks signatures/) });
    });

    it('refuses a bad signature next to the required ones', async () => {
      const e = await entry(founded, { kind: 'add', member: seatC }, [a, b]);
      const other = await entry(founded, { kind: 'dissolve' }, [b]);
      const forged = { ...e, sigs: [e.sigs[0]!, { by: b.key, sig: other.sigs[0]!.sig }] };
      expect(await refusal(applyEntry(founded, forged))).toEqual({ code: 'group_signature', message: 'a signature does not verify' });
    });

    it('refuses a signature by someone who may not sign the change (the host on an add), as such', async () => {
      const e = await entry(founded, { kind: 'add', member: seatC }, [a, b, host]);
      expect(await refusal(applyEntry(founded, e))).toEqual({ code: 'group_signature', message: expect.stringMatching(/may not sign/) });
    });

    it('refuses a signer listed twice', async () => {
      const e = await entry(founded, { kind: 'add', member: seatC }, [a, b, a]);
      expect(await refusal(applyEntry(founded, e))).toEqual({ code: 'group_signature', message: expect.stringMatching(/may not sign/) });
    });

    it('refuses a change with no signature at all while the channel has no party (nobody could sign it)', async () => {
      const amend = await entry(bare, { kind: 'charter', charter: charter({ memberCap: 5 }) }, []);
      expect(await refusal(applyEntry(bare, amend))).toEqual({ code: 'forbidden', message: 'nobody could sign this change' });
    });
  });

  describe('seats and their invitations', () => {
    it('refuses a seat whose invitation another key than the host’s signed', async () => {
      const e = await entry(founded, { kind: 'add', member: await seat(founded.channel, a, c) }, [a, b]);
      expect(await refusal(applyEntry(founded, e))).toEqual({ code: 'group_signature', message: 'a seat without a valid invitation' });
    });

    it('refuses a seat claiming a party’s role on an observer’s invitation', async () => {
      const e = await entry(founded, { kind: 'add', member: await seat(founded.channel, host, c, 'party', 'observer') }, [a, b]);
      expect(await refusal(applyEntry(founded, e))).toEqual({ code: 'group_signature', message: 'a seat without a valid invitation' });
      // The same invitation admits the observer it was issued for.
      const ok = await applyEntry(founded, await entry(founded, { kind: 'add', member: await seat(founded.channel, host, c, 'observer') }, [a, b]));
      expect(ok.members[c.key]?.role).toBe('observer');
    });

    it('refuses a seat whose keys the invitation did not vouch for (sign key swapped)', async () => {
      const genuine = await seat(founded.channel, host, c);
      const swapped = { ...genuine, signKey: keys().signKey };
      const e = await entry(founded, { kind: 'add', member: swapped }, [a, b]);
      expect(await refusal(applyEntry(founded, e))).toEqual({ code: 'group_signature', message: 'a seat without a valid invitation' });
    });

    it('refuses adding someone already a member (the host as a party), though every party signed it', async () => {
      const hostAsParty = await seat(founded.channel, host, host);
      const e = await entry(founded, { kind: 'add', member: hostAsParty }, [a, b]);
      expect((await refusal(applyEntry(founded, e))).code).toBe('already_member');
    });

    it('refuses a founding that lists one founder twice (a founding by one party)', async () => {
      const s = await seat(bare.channel, host, c);
      const e = await entry(bare, { kind: 'found', members: [s, s] }, [c]);
      expect(await refusal(applyEntry(bare, e))).toEqual({ code: 'group_invalid', message: 'a member is listed twice' });
    });

    it('refuses a founding with an observer among the founders', async () => {
      const members = [await seat(bare.channel, host, a), await seat(bare.channel, host, c, 'observer')];
      const e = await entry(bare, { kind: 'found', members }, [a, c]);
      expect(await refusal(applyEntry(bare, e))).toEqual({ code: 'group_invalid', message: 'founders are parties' });
    });

    it('refuses a second founding once the channel has parties', async () => {
      const d = keys();
      const members = [await seat(founded.channel, host, c), await seat(founded.channel, host, d)];
      const e = await entry(founded, { kind: 'found', members }, [c, d]);
      expect(await refusal(applyEntry(founded, e))).toEqual({ code: 'forbidden', message: 'the channel already has parties' });
    });

    it('refuses an add beyond the charter’s member cap', async () => {
      const small = await open({ memberCap: 3 });
      const e = await entry(small.founded, { kind: 'add', member: await seat(small.founded.channel, host, c) }, [a, b]);
      expect((await refusal(applyEntry(small.founded, e))).code).toBe('channel_full');
    });
  });

  describe('removals, leaves, roles, charter', () => {
    it('refuses removing a member the state does not hold (member_not_found, not a crash)', async () => {
      const e = await entry(founded, { kind: 'remove', member: c.key }, [a, b]);
      expect((await refusal(applyEntry(founded, e))).code).toBe('member_not_found');
    });

    it('refuses changing the host’s seat: removing it, or giving it a role, though every party signed', async () => {
      expect((await refusal(applyEntry(founded, await entry(founded, { kind: 'remove', member: host.key }, [a, b])))).code).toBe('forbidden');
      expect((await refusal(applyEntry(founded, await entry(founded, { kind: 'role', member: host.key, role: 'party' }, [a, b])))).code).toBe('forbidden');
    });

    it('refuses a removal by the host alone unless the charter lets the host remove', async () => {
      const e = await entry(founded, { kind: 'remove', member: b.key }, [host]);
      expect((await refusal(applyEntry(founded, e))).code).toBe('group_signature');
      await expect(applyEntry(founded, await entry(founded, { kind: 'remove', member: b.key }, [a]))).resolves.toMatchObject({ epoch: founded.epoch + 1 });
      const lenient = await open({ hostMayRemove: true });
      const s = await applyEntry(lenient.founded, await entry(lenient.founded, { kind: 'remove', member: b.key }, [host]));
      expect(s.members[b.key]).toBeUndefined();
    });

    it('refuses an unsigned removal of the last party, even where the host may remove', async () => {
      const lenient = await open({ hostMayRemove: true });
      const one = await applyEntry(lenient.founded, await entry(lenient.founded, { kind: 'leave', member: a.key }, [a]));
      expect(partiesOf(one)).toEqual([b.key]);
      const unsigned = await entry(one, { kind: 'remove', member: b.key }, []);
      expect((await refusal(applyEntry(one, unsigned))).code).toBe('group_signature');
      await expect(applyEntry(one, await entry(one, { kind: 'remove', member: b.key }, [host]))).resolves.toMatchObject({ epoch: one.epoch + 1 });
    });

    it('refuses a role change that changes nothing', async () => {
      const e = await entry(founded, { kind: 'role', member: a.key, role: 'party' }, [a, b]);
      expect(await refusal(applyEntry(founded, e))).toEqual({ code: 'group_invalid', message: 'the member already has that role' });
    });

    it('refuses a charter whose member cap is below the members already seated', async () => {
      const e = await entry(founded, { kind: 'charter', charter: charter({ memberCap: 2 }) }, [a, b]);
      expect((await refusal(applyEntry(founded, e))).code).toBe('charter_invalid');
      await expect(applyEntry(founded, await entry(founded, { kind: 'charter', charter: charter({ memberCap: 3 }) }, [a, b]))).resolves.toMatchObject({ charter: { memberCap: 3 } });
    });
  });

  it('the state an entry leads to carries that entry’s proposal hash', async () => {
    const e = await entry(founded, { kind: 'dissolve' }, [a]);
    expect(proposalHash(founded.channel, e)).toBe((await applyEntry(founded, e)).stateHash);
  });
});
