/**
 * The group log against a relay that lies about state (issue 12): each attack the relay (alone,
 * or with the host) could mount on membership, roles, the charter, removal and dissolution, and
 * each defect of the honest flow, driven through the SDK against the real relay behind a
 * malicious front (`test/support/malicious-relay.ts`) that serves each member its own view.
 *
 * Each attack shows three things: the intruder gets nothing it could decrypt (no `send` header
 * addressed to it, no session started with it), the right client raises the right alarm code,
 * and honest members lose nothing (a control flow works). Which member, which change and which
 * variant are drawn from a seed printed in the suite's name (set GROUP_ATTACK_SEED to replay).
 */
import fc from 'fast-check';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  MemoryKeyStore,
  convene,
  decodeInviteLink,
  invitationKeys,
  join,
  newInviteSecret,
  reopen,
  signGroupChange,
  signRedeem,
  sodium,
  sodiumReady,
  statementOf,
  type CharterInput,
  type PendingMember,
} from '@backchannel/client-sdk';
import { toBase64Url, type GroupChange, type GroupEntry, type GroupProposal, type RelayFrameOf, type Seat } from '@backchannel/client-sdk/protocol';
import { forgedTail, groupPush, mapEntries, mapPending, startMaliciousRelay, withholdFrom, type MaliciousRelay } from '../support/malicious-relay.js';
import { rawMember, type RawMember } from '../support/members.js';
import { startTestRelay, type TestRelay } from '../support/relay.js';
import { codeOf, nodePlatform, observe, until, type Party } from '../support/sdk.js';

const SEED = Number(process.env.GROUP_ATTACK_SEED ?? Date.now() % 1_000_000_007);

/** mulberry32: a small seeded generator, so a failing draw can be replayed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}
/** Each test draws from its own generator (the seed mixed with its name), so one test replays alone with `-t`. */
let random = rng(SEED);
const nameHash = (name: string): number => [...name].reduce((h, c) => Math.imul(h ^ c.charCodeAt(0), 16_777_619) >>> 0, 2_166_136_261);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
const shuffled = <T>(xs: readonly T[]): T[] => xs.map((x) => [random(), x] as const).sort((a, b) => a[0] - b[0]).map(([, x]) => x);

/** A member's per-channel secrets, read from its own store (the member colluding, or its signatures replayed). */
interface Signer {
  readonly key: string;
  readonly signSecret: string;
}
interface StoredRecord {
  group: { self: { dhPublic: string; signSecret: string } };
  lastSeq: number;
}
const recordOf = async (p: Party): Promise<StoredRecord | undefined> => (await p.store.get(`backchannel/channel/${p.client.id}`)) as StoredRecord | undefined;
async function signerOf(p: Party): Promise<Signer> {
  const r = await recordOf(p);
  return { key: r!.group.self.dhPublic, signSecret: r!.group.self.signSecret };
}

/** Fresh keys the relay controls: the intruder it wants to be encrypted to. */
function intruderKeys(): Signer & { signKey: string } {
  const dh = sodium.crypto_box_keypair();
  const sign = sodium.crypto_sign_keypair();
  return { key: toBase64Url(dh.publicKey), signKey: toBase64Url(sign.publicKey), signSecret: toBase64Url(sign.privateKey) };
}

/** A proposal of `change` on `p`'s verified state. */
function onState(p: Party, change: GroupChange): GroupProposal {
  const g = p.client.group();
  return { epoch: g.epoch + 1, prev: g.stateHash, change };
}

/** An entry of `proposal` signed by `signers` (in the relay's order). */
async function signed(channel: string, proposal: GroupProposal, signers: readonly Signer[]): Promise<GroupEntry> {
  const sigs = await Promise.all(signers.map(async (s) => ({ by: s.key, sig: toBase64Url(await signGroupChange(statementOf(channel, proposal), s.signSecret)) })));
  return { ...proposal, sigs: sigs.sort((a, b) => (a.by < b.by ? -1 : 1)) };
}

/** The entry the relay can build from the genuine `group.sign` frames it received for changes of `kind`. */
function fromSignatures(relay: MaliciousRelay, signers: readonly Party[], kind: GroupChange['kind'], since = 0): GroupEntry {
  const frames = signers.flatMap((p) => relay.framesFrom(p.client.memberKey, 'group.sign', since).filter((f) => f.proposal.change.kind === kind).slice(-1).map((f) => ({ by: p.client.memberKey, f })));
  if (frames.length !== signers.length) throw new Error(`expected a ${kind} signature from each signer`);
  const proposal = frames[0]!.f.proposal;
  return { ...proposal, sigs: frames.map(({ by, f }) => ({ by, sig: f.sig })).sort((a, b) => (a.by < b.by ? -1 : 1)) };
}

const codes = (p: Party): string[] => p.alarms.map((a) => a.code);
const partiesIn = (p: Party): string[] => p.client.group().members.filter((m) => m.role === 'party').map((m) => m.key).sort();

describe(`the group log against a relay that lies about state (seed ${SEED})`, () => {
  let relay: TestRelay;
  let mal: MaliciousRelay;
  const open: Party[] = [];
  const raws: RawMember[] = [];

  beforeAll(async () => {
    await sodiumReady();
    relay = await startTestRelay();
    mal = await startMaliciousRelay(relay.url);
  });
  beforeEach((ctx) => {
    random = rng(SEED ^ nameHash(ctx.task.name));
    mal?.reset();
  });
  afterAll(async () => {
    mal?.reset();
    await Promise.all(open.map((p) => p.client.close().catch(() => undefined)));
    for (const r of raws) await r.conn.close().catch(() => undefined);
    await mal?.close();
    await relay?.close();
  });

  const track = (p: Party): Party => {
    open.push(p);
    return p;
  };

  /** A newcomer joins (pending) with `link`, or a fresh invitation of `role` from `host`. */
  async function newcomer(host: Party, role: 'party' | 'observer' = 'party', link?: string): Promise<Party> {
    const store = new MemoryKeyStore();
    const invite = link ?? (await host.client.invite({ role }));
    return track(observe(await join({ invite, store, platform: nodePlatform }), store));
  }

  /** Waits until every client's verified state is the same (each asks the relay for the log). */
  async function settle(clients: readonly Party[]): Promise<void> {
    await until(async () => {
      const views = await Promise.all(clients.map((c) => c.client.refreshGroup()));
      return views.every((v) => v.stateHash === views[0]!.stateHash);
    });
  }

  /** Every party approves `who`, comparing its fingerprint; waits until everyone has it. */
  async function admit(parties: readonly Party[], who: Party, others: readonly Party[] = []): Promise<void> {
    const fingerprint = await who.client.myFingerprint();
    for (const p of parties) await p.client.approve(who.client.memberKey, { fingerprint });
    await until(async () => (await who.client.refreshGroup()).members.some((m) => m.key === who.client.memberKey));
    await settle([...parties, who, ...others]);
  }

  /** A host and `n` founding parties who approved each other, all through the malicious relay. */
  async function channel(n: number, charter: CharterInput = {}): Promise<{ host: Party; parties: Party[] }> {
    const store = new MemoryKeyStore();
    const host = track(observe(await convene({ relay: mal.url, store, platform: nodePlatform, charter }), store));
    const parties: Party[] = [];
    for (let i = 0; i < n; i++) parties.push(await newcomer(host));
    for (const a of parties) for (const b of parties) if (a !== b) await a.client.approve(b.client.memberKey, { fingerprint: await b.client.myFingerprint() });
    await until(async () => (await Promise.all(parties.map((p) => p.client.refreshGroup()))).every((g) => g.members.filter((m) => m.role === 'party').length === n));
    await settle([host, ...parties]);
    return { host, parties };
  }

  /** `from` sends `text`; waits until each of `to` has it. */
  async function says(from: Party, text: string, to: readonly Party[]): Promise<number> {
    const sent = await from.client.sendText(text);
    await until(() => to.every((p) => p.messages.some((m) => m.seq === sent.seq && m.content.kind === 'text' && m.content.text === text)));
    return sent.seq;
  }

  /** Nothing anyone sent (since `since`) is addressed to `key`, and nobody started a session with it. */
  function expectNothingFor(key: string, since = 0): void {
    expect(mal.sendsTo(key, since), 'a send frame carries a header for the intruder').toEqual([]);
    expect(mal.fetchesFor(key, since), 'a client fetched the intruder’s prekeys').toEqual([]);
  }

  /** Pushes `entries` to each of `clients` and serves them as the log's tail from now on. */
  function serveForged(clients: readonly Party[], entries: readonly GroupEntry[]): () => void {
    const stops = clients.map((c) => mal.viewFor(c.client.memberKey, forgedTail(entries)));
    for (const c of clients) mal.inject(c.client.memberKey, groupPush(c.client.id, entries));
    return () => stops.forEach((s) => s());
  }

  it(`(1) a newcomer shown an invented party or swapped sign keys refuses the log and never encrypts to it`, async () => {
    const { host, parties } = await channel(2);
    const [alice, bob] = parties as [Party, Party];
    const channelId = host.client.id;
    const insiders = new Set([host, ...parties].map((p) => p.client.memberKey));
    const intruder = intruderKeys();
    const asIntruder = (key: string): Signer => ({ key, signSecret: intruder.signSecret });
    const variant = pick(['swap a founder’s sign key', 'swap the host’s sign key', 'invent an added party'] as const);
    const victim = pick(parties);
    const link = await host.client.invite();
    const log = mal.logOf(channelId);
    const head = log.at(-1)!;
    expect(head.epoch).toBe(alice.client.group().epoch);

    // The relay prepares its lie from the genuine log, re-signing whatever the swapped key lets it.
    const replaced = new Map<number, GroupEntry>();
    const appended: GroupEntry[] = [];
    if (variant === 'swap a founder’s sign key') {
      const found = log.find((e) => e.change.kind === 'found')!;
      if (found.change.kind !== 'found') throw new Error('unreachable');
      const members = found.change.members.map((s) => (s.key === victim.client.memberKey ? { ...s, signKey: intruder.signKey } : s));
      const proposal: GroupProposal = { epoch: found.epoch, prev: found.prev, change: { kind: 'found', members } };
      const mine = (await signed(channelId, proposal, [asIntruder(victim.client.memberKey)])).sigs[0]!;
      replaced.set(found.epoch, { ...proposal, sigs: found.sigs.map((s) => (s.by === mine.by ? mine : s)) });
    } else if (variant === 'swap the host’s sign key') {
      const genesis = log[0]!;
      if (genesis.change.kind !== 'genesis') throw new Error('unreachable');
      const proposal: GroupProposal = { epoch: 0, prev: genesis.prev, change: { ...genesis.change, host: { ...genesis.change.host, signKey: intruder.signKey } } };
      replaced.set(0, await signed(channelId, proposal, [asIntruder(host.client.memberKey)]));
    } else {
      // The intruder's seat carries the newcomer's own (genuine) invitation, which it cannot have redeemed.
      const grant = mal.framesFrom(host.client.memberKey, 'invite.create').at(-1)!.invite;
      const proof = toBase64Url(await signRedeem({ channel: channelId, inviteKey: grant.key, memberKey: intruder.key, memberSignKey: intruder.signKey }, invitationKeys(newInviteSecret()).secretKey));
      const seat: Seat = { key: intruder.key, signKey: intruder.signKey, role: 'party', invite: grant, proof };
      const proposal: GroupProposal = { epoch: head.epoch + 1, prev: alice.client.group().stateHash, change: { kind: 'add', member: seat } };
      appended.push(await signed(channelId, proposal, [asIntruder(alice.client.memberKey), asIntruder(bob.client.memberKey)]));
    }
    // ...and serves it to whoever it has not seen before: the newcomer.
    const stop = mal.viewFor((m) => !insiders.has(m), (frame, from) => {
      const entries = frame.entries.map((e) => replaced.get(e.epoch) ?? e);
      if (appended.length === 0) return { ...frame, entries };
      return { ...frame, head: Math.max(frame.head, appended.at(-1)!.epoch), entries: [...entries, ...appended.filter((e) => e.epoch >= (from ?? 0))] };
    });
    expect(await codeOf(join({ invite: link, store: new MemoryKeyStore(), platform: nodePlatform })), variant).toBe('integrity_group');
    stop();

    // Control: the same flow, unmolested, admits a newcomer who gets messages.
    const dave = await newcomer(host);
    await admit(parties, dave, [host]);
    await says(alice, 'hello Dave', [bob, dave]);
    expect(partiesIn(dave)).not.toContain(intruder.key);
    expectNothingFor(intruder.key);
    for (const p of [host, alice, bob, dave]) expect(codes(p)).toEqual([]);
  });

  it(`(2) an add missing one party’s signature (the relay calls that party absent) is refused by every client; nobody encrypts to the added key`, async () => {
    const { host, parties } = await channel(3);
    const dave = await newcomer(host);
    const [absent, ...signers] = shuffled(parties) as [Party, ...Party[]];
    expect(signers).not.toContain(absent);
    const fingerprint = await dave.client.myFingerprint();
    const since = mal.mark();
    for (const p of signers) await p.client.approve(dave.client.memberKey, { fingerprint });
    const before = host.client.group();
    // The relay completes the admission with the signatures it has, as if `absent` were pending.
    const forged = fromSignatures(mal, signers, 'add', since);
    const everyone = [host, ...parties, dave];
    const stop = serveForged(everyone, [forged]);
    await until(() => everyone.every((p) => codes(p).includes('integrity_group')));
    for (const p of [host, ...parties]) {
      expect(p.client.group().stateHash).toBe(before.stateHash);
      expect(p.client.group().members.map((m) => m.key)).not.toContain(dave.client.memberKey);
    }
    expect(dave.client.group().members.map((m) => m.key)).not.toContain(dave.client.memberKey);

    // Honest parties keep talking; none of it goes to Dave.
    for (const p of parties) await says(p, `without Dave, from ${p.client.memberKey.slice(0, 6)}`, parties.filter((q) => q !== p));
    expectNothingFor(dave.client.memberKey);
    stop();
    for (const p of parties) expect(codes(p).filter((c) => c !== 'integrity_group')).toEqual([]);
  });

  it(`(3) a removal withheld from one party: those who have it stop encrypting to the removed member; the withheld party refuses the newer message and recovers it later`, async () => {
    const { host, parties } = await channel(3, { hostMayRemove: true });
    const [victim, withheld, informed] = shuffled(parties) as [Party, Party, Party];
    const epoch = informed.client.group().epoch;
    const stop = mal.viewFor(withheld.client.memberKey, withholdFrom(epoch + 1));
    const since = mal.mark();
    await host.client.remove(victim.client.memberKey);
    await until(async () => !partiesIn(informed).includes(victim.client.memberKey) || !(await informed.client.refreshGroup()).members.some((m) => m.key === victim.client.memberKey));
    expect(withheld.client.group().epoch).toBe(epoch);

    const sent = await informed.client.sendText('after the removal');
    await until(() => withheld.alarms.some((a) => a.seq === sent.seq));
    expect(withheld.alarms.filter((a) => a.seq === sent.seq).map((a) => a.code)).toEqual(['integrity_group']);
    expect(withheld.messages.some((m) => m.seq === sent.seq)).toBe(false);
    expectNothingFor(victim.client.memberKey, since);

    // The relay stops lying: the withheld party catches up and, resuming from its store, gets the message.
    stop();
    await withheld.client.refreshGroup();
    expect(partiesIn(withheld)).not.toContain(victim.client.memberKey);
    await withheld.client.close();
    const resumed = track(observe(await reopen({ channel: withheld.client.id, store: withheld.store, platform: nodePlatform }), withheld.store));
    await until(() => resumed.messages.some((m) => m.seq === sent.seq));
    await says(resumed, 'caught up', [informed]);
    expectNothingFor(victim.client.memberKey, since);
    expect(codes(informed)).toEqual([]);
  });

  it(`(3b) a party that signed a removal never encrypts to that member, even when the relay never applies it`, async () => {
    const { parties } = await channel(3);
    const [victim, first, second] = shuffled(parties) as [Party, Party, Party];
    // The relay answers `ok` to the last removal signature and never stores it: the member stays "active".
    const swallow = mal.fromMember(second.client.memberKey, (frame, link) => {
      if (frame.type === 'group.sign' && frame.proposal.change.kind === 'remove') {
        link.inject({ type: 'ok', rid: frame.rid });
        return [];
      }
      return [frame];
    });
    const since = mal.mark();
    await first.client.remove(victim.client.memberKey);
    await second.client.remove(victim.client.memberKey);
    expect(partiesIn(first)).toContain(victim.client.memberKey); // never applied
    for (const [from, to] of [[first, second], [second, first]] as const) {
      const sent = await codeOf(from.client.sendText('we voted her out'));
      if (sent === 'ok') await until(() => to.messages.some((m) => m.content.kind === 'text' && m.content.text === 'we voted her out'));
    }
    swallow();
    expectNothingFor(victim.client.memberKey, since);
  });

  it(`(4) a role the parties did not all sign, or a pending observer's seat shown as a party, is refused; nobody encrypts to the observer`, async () => {
    const { host, parties } = await channel(2);
    const [alice, bob] = shuffled(parties) as [Party, Party];
    const observer = await newcomer(host, 'observer');
    const okey = observer.client.memberKey;
    const variant = pick(['pending seat says party', 'pending seat and invitation say party', 'add entry says party'] as const);
    const asParty = (s: Seat): Seat => (s.key !== okey ? s : variant === 'pending seat says party' ? { ...s, role: 'party' } : { ...s, role: 'party', invite: { ...s.invite, role: 'party' } });
    const fingerprint = await observer.client.myFingerprint();
    if (variant === 'add entry says party') {
      // Both approve it as the observer it is; the relay shows Alice the admission with the role 'party'.
      const stop = mal.viewFor(alice.client.memberKey, mapEntries((e) => (e.change.kind === 'add' ? { ...e, change: { kind: 'add', member: asParty(e.change.member) } } : e)));
      await alice.client.approve(okey, { fingerprint });
      await bob.client.approve(okey, { fingerprint });
      await until(() => codes(alice).includes('integrity_group'));
      expect(alice.client.group().members.map((m) => m.key)).not.toContain(okey);
      stop();
    } else {
      // The relay shows Alice the pending seat as a party's: it does not verify, so there is nothing to approve.
      const stop = mal.viewFor(alice.client.memberKey, mapPending(asParty));
      const view = await alice.client.refreshGroup();
      expect(view.pending.map((p) => p.key)).not.toContain(okey);
      expect(await codeOf(alice.client.approve(okey, { fingerprint }))).toBe('member_not_found');
      stop();
      await alice.client.approve(okey, { fingerprint });
      await bob.client.approve(okey, { fingerprint });
    }
    await settle([host, alice, bob, observer]);
    for (const p of [alice, bob, observer]) expect(p.client.group().members.find((m) => m.key === okey)?.role).toBe('observer');

    // Alice alone signs making the observer a party; the relay presents it as complete.
    const since = mal.mark();
    await alice.client.setRole(okey, 'party');
    const forged = fromSignatures(mal, [alice], 'role', since);
    const everyone = [host, alice, bob, observer];
    const before = everyone.map((p) => p.client.group().stateHash);
    const stop = serveForged(everyone, [forged]);
    await until(() => [alice, bob, observer].every((p) => p.alarms.filter((a) => a.code === 'integrity_group').length >= (p === alice && variant === 'add entry says party' ? 2 : 1)));
    expect(everyone.map((p) => p.client.group().stateHash)).toEqual(before);
    for (const p of everyone) expect(p.client.group().members.find((m) => m.key === okey)?.role).toBe('observer');
    await says(alice, 'parties only', [bob]);
    await says(bob, 'parties only, still', [alice]);
    stop();
    expectNothingFor(okey);
  });

  it(`(5) the relay never sees an invitation's secret, cannot redeem it with its own keys, and a pending member is approved only against its fingerprint`, async () => {
    const { host, parties } = await channel(2);
    const [alice, bob] = shuffled(parties) as [Party, Party];
    const link = await host.client.invite();
    const secret = decodeInviteLink(link).secret;
    const grant = mal.framesFrom(host.client.memberKey, 'invite.create').at(-1)!.invite;

    // The relay (holding only the invitation's public key) redeems it with its own keys.
    const intruder = await rawMember(mal.url);
    raws.push(intruder);
    await intruder.conn.connect();
    const how = pick(['signed by a key of its own', 'a genuine proof replayed'] as const);
    const genuineProof = mal.framesFrom(alice.client.memberKey, 'invite.redeem')[0]!.proof;
    const proof =
      how === 'a genuine proof replayed'
        ? genuineProof
        : toBase64Url(await signRedeem({ channel: host.client.id, inviteKey: grant.key, memberKey: intruder.dh.publicKey, memberSignKey: intruder.sign.publicKey }, invitationKeys(newInviteSecret()).secretKey));
    const redeem = intruder.conn.request({ type: 'invite.redeem', channel: host.client.id, invite: grant.key, signKey: toBase64Url(intruder.sign.publicKey), proof });
    expect(await codeOf(redeem), how).toBe('invite_invalid');

    const dave = await newcomer(host, 'party', link);
    // Nothing Dave sent holds the secret, in any field.
    const redeemFrame = mal.framesFrom(dave.client.memberKey, 'invite.redeem');
    expect(redeemFrame).toHaveLength(1);
    expect(Object.values(redeemFrame[0]!)).not.toContain(secret);
    expect(JSON.stringify(mal.sent)).not.toContain(secret);

    // Alice sees Dave pending with his fingerprint before she approves; nothing else will do.
    const fingerprint = await dave.client.myFingerprint();
    expect((await alice.client.refreshGroup()).pending.find((p) => p.key === dave.client.memberKey)?.fingerprint).toBe(fingerprint);
    const signs = mal.framesFrom(alice.client.memberKey, 'group.sign').length;
    const wrong = pick([await alice.client.myFingerprint(), fingerprint.replace(/\d/, (d) => String((Number(d) + 1) % 10))]);
    expect(await codeOf(alice.client.approve(dave.client.memberKey))).toBe('not_verified');
    expect(await codeOf(alice.client.approve(dave.client.memberKey, { fingerprint: wrong }))).toBe('not_verified');
    expect(mal.framesFrom(alice.client.memberKey, 'group.sign')).toHaveLength(signs); // nothing was signed
    await alice.client.approve(dave.client.memberKey, { fingerprint });
    await bob.client.approve(dave.client.memberKey, { unverified: true }); // the explicit choice
    await settle([host, alice, bob, dave]);
    await says(alice, 'welcome', [bob, dave]);
    expectNothingFor(toBase64Url(intruder.dh.publicKey));
    for (const p of [alice, bob, dave]) expect(codes(p)).toEqual([]);
  });

  it(`(5b) a party is told, unprompted, of a member awaiting its approval, with the member's fingerprint`, async () => {
    const { host, parties } = await channel(2);
    const announced = new Map<Party, PendingMember[]>(parties.map((p) => [p, []]));
    for (const p of parties) p.client.on('pending', (m) => announced.get(p)!.push(m));
    const dave = await newcomer(host);
    const fingerprint = await dave.client.myFingerprint();
    // The relay pushes the new pending member to every party; no party asks.
    await until(() => parties.every((p) => announced.get(p)!.some((m) => m.key === dave.client.memberKey)), 5_000);
    for (const p of parties) expect(announced.get(p)!.find((m) => m.key === dave.client.memberKey)?.fingerprint).toBe(fingerprint);
  });

  it(`(6a) a charter change not every party signed is refused by every client; the charter (and disappearing time) stays`, async () => {
    const { host, parties } = await channel(3);
    const [proposer, ...rest] = shuffled(parties) as [Party, ...Party[]];
    const original = proposer.client.group().charter;
    const since = mal.mark();
    await proposer.client.amendCharter({ disappearSec: 60, retentionSec: 3600 });
    const forged = fromSignatures(mal, [proposer], 'charter', since);
    const stop = serveForged([host, ...parties], [forged]);
    await until(() => [host, ...parties].every((p) => codes(p).includes('integrity_group')));
    for (const p of [host, ...parties]) expect(p.client.group().charter).toEqual(original);
    const seq = await says(rest[0]!, 'no disappearing', [proposer, rest[1]!]);
    expect(proposer.messages.find((m) => m.seq === seq)?.expiresAt).toBeNull();
    stop();
  });

  it(`(6b) a charter every party signed, shown to one party with another charter inside, is refused there; the genuine one lands`, async () => {
    const { host, parties } = await channel(3);
    const original = parties[0]!.client.group().charter;
    const target = pick(parties);
    const alarmsBefore = target.alarms.length;
    const stopRewrite = mal.viewFor(target.client.memberKey, mapEntries((e) => (e.change.kind === 'charter' ? { ...e, change: { kind: 'charter', charter: { ...e.change.charter, disappearSec: 5, retentionSec: 60 } } } : e)));
    for (const p of parties) await p.client.amendCharter({ retentionSec: 7200 });
    await until(() => target.alarms.slice(alarmsBefore).some((a) => a.code === 'integrity_group'));
    expect(target.client.group().charter).toEqual(original);
    stopRewrite();
    await settle([host, ...parties]);
    for (const p of [host, ...parties]) expect(p.client.group().charter).toEqual({ ...original, retentionSec: 7200 });
  });

  it(`(7) a forged dissolve (signed by the host, by nobody, or with a party's name on a bad signature) deletes nothing`, async () => {
    const { host, parties } = await channel(2);
    const [target, other] = shuffled(parties) as [Party, Party];
    const variant = pick(['signed by the host', 'signed by nobody', 'a party named, signature bad'] as const);
    const proposal = onState(target, { kind: 'dissolve' });
    const entry: GroupEntry =
      variant === 'signed by the host'
        ? await signed(host.client.id, proposal, [await signerOf(host)])
        : variant === 'signed by nobody'
          ? { ...proposal, sigs: [] }
          : { ...proposal, sigs: [{ by: other.client.memberKey, sig: toBase64Url(sodium.randombytes_buf(64)) }] };
    const everyone = [host, target, other];
    const ended: string[] = [];
    for (const p of everyone) p.client.on('ended', (why) => ended.push(why));
    const stop = serveForged(everyone, [entry]);
    await until(() => everyone.every((p) => codes(p).includes('integrity_group')));
    stop();
    expect(ended).toEqual([]);
    for (const p of everyone) {
      expect(p.client.group().dissolved, variant).toBe(false);
      expect(await recordOf(p)).toBeDefined();
    }
    // The target restarts from its store and goes on.
    await target.client.close();
    const again = track(observe(await reopen({ channel: target.client.id, store: target.store, platform: nodePlatform }), target.store));
    await says(again, 'still here', [other]);
    await says(other, 'me too', [again]);
  });

  it(`(8) one injected delivery with a huge sequence number does not move the cursor`, async () => {
    const { parties } = await channel(2);
    const [alice, bob] = shuffled(parties) as [Party, Party];
    await says(alice, 'before', [bob]);
    const variant = pick(['from an unknown key', 'forged as a party'] as const);
    const huge = 2 ** 40 + Math.floor(random() * 1000);
    const bogus: RelayFrameOf<'deliver'> = {
      type: 'deliver',
      channel: bob.client.id,
      seq: huge,
      from: variant === 'from an unknown key' ? intruderKeys().key : alice.client.memberKey,
      header: toBase64Url(sodium.randombytes_buf(120)),
      body: toBase64Url(sodium.randombytes_buf(64)),
      commitment: toBase64Url(sodium.randombytes_buf(32)),
      receivedAt: Date.now(),
      chain: toBase64Url(sodium.randombytes_buf(32)),
    };
    mal.inject(bob.client.memberKey, bogus);
    await until(() => bob.alarms.some((a) => a.seq === huge));
    expect(bob.alarms.filter((a) => a.seq === huge).map((a) => a.code), variant).toEqual([variant === 'from an unknown key' ? 'integrity_roster' : 'decrypt_failed']);
    expect(bob.messages.some((m) => m.seq === huge)).toBe(false);
    await says(alice, 'after', [bob]);
    expect((await recordOf(bob))!.lastSeq).toBeLessThan(huge);
    await bob.client.close();
    const again = track(observe(await reopen({ channel: bob.client.id, store: bob.store, platform: nodePlatform }), bob.store));
    await says(alice, 'after a restart', [again]);
  });

  for (const [tag, early] of [['9a', false], ['9b', true]] as const) {
    const when = early ? 'redeemed before the opening (pending while the founders open it)' : 'redeemed after the opening';
    it(`(${tag}) an invitation issued before the channel opened, ${when}, admits a member who sends and receives with no alarm`, async () => {
      const store = new MemoryKeyStore();
      const host = track(observe(await convene({ relay: mal.url, store, platform: nodePlatform }), store));
      const links = [await host.client.invite(), await host.client.invite(), await host.client.invite()];
      const alice = await newcomer(host, 'party', links[0]);
      const bob = await newcomer(host, 'party', links[1]);
      const carolEarly = early ? await newcomer(host, 'party', links[2]) : undefined;
      await alice.client.approve(bob.client.memberKey, { fingerprint: await bob.client.myFingerprint() });
      await bob.client.approve(alice.client.memberKey, { fingerprint: await alice.client.myFingerprint() });
      await settle([host, alice, bob]);
      await says(alice, 'opened', [bob]);
      await says(bob, 'opened too', [alice]);
      const carol = carolEarly ?? (await newcomer(host, 'party', links[2]));
      await admit([alice, bob], carol, [host]);
      await says(carol, 'hello from Carol', [alice, bob]);
      await says(alice, 'hello Carol', [bob, carol]);
      await says(bob, 'hello Carol, from Bob', [alice, carol]);
      for (const p of [host, alice, bob, carol]) expect(codes(p), when).toEqual([]);
    });
  }

  it(`(10) the documented happy path raises no alarm, also after every client restarts from its store`, async () => {
    const { host, parties } = await channel(3);
    for (const p of parties) await says(p, `first from ${p.client.memberKey.slice(0, 6)}`, parties.filter((q) => q !== p));
    const restarted: Party[] = [];
    for (const p of [host, ...parties]) {
      await p.client.close();
      restarted.push(track(observe(await reopen({ channel: p.client.id, store: p.store, platform: nodePlatform }), p.store)));
    }
    const [h2, ...p2] = restarted as [Party, ...Party[]];
    await settle(restarted);
    for (const p of p2) await says(p, `again from ${p.client.memberKey.slice(0, 6)}`, p2.filter((q) => q !== p));
    for (const p of [host, ...parties, h2, ...p2]) expect(codes(p)).toEqual([]);
  });

  it(`(11) a member shown forged once is still admitted by genuine approvals, and gets messages`, async () => {
    const { host, parties } = await channel(2);
    const [alice, bob] = shuffled(parties) as [Party, Party];
    const dave = await newcomer(host);
    const fingerprint = await dave.client.myFingerprint();
    const since = mal.mark();
    await alice.client.approve(dave.client.memberKey, { fingerprint });
    // The relay shows everyone Dave "admitted" with Alice's signature alone (and a bad one for Bob).
    const partial = fromSignatures(mal, [alice], 'add', since);
    const forged = { ...partial, sigs: [...partial.sigs, { by: bob.client.memberKey, sig: toBase64Url(sodium.randombytes_buf(64)) }].sort((a, b) => (a.by < b.by ? -1 : 1)) };
    const stop = serveForged([host, alice, bob, dave], [forged]);
    await until(() => [host, alice, bob, dave].every((p) => codes(p).includes('integrity_group')));
    stop();
    await bob.client.approve(dave.client.memberKey, { fingerprint });
    await settle([host, alice, bob, dave]);
    for (const p of [alice, bob, dave]) expect(partiesIn(p)).toContain(dave.client.memberKey);
    await says(alice, 'welcome Dave', [bob, dave]);
    await says(bob, 'welcome from Bob', [alice, dave]);
    await says(dave, 'thanks', [alice, bob]);
    for (const p of [alice, bob, dave]) expect(codes(p).filter((c) => c !== 'integrity_group')).toEqual([]);
  });

  it(`(12) each different forged entry raises its own alarm, also at an epoch already forged once`, async () => {
    const { host, parties } = await channel(2);
    const [target, other] = shuffled(parties) as [Party, Party];
    const kinds = shuffled([{ kind: 'dissolve' as const }, { kind: 'remove' as const, member: other.client.memberKey }, { kind: 'charter' as const, charter: { ...target.client.group().charter, retentionSec: 600 } }]);
    const hostSigner = await signerOf(host);
    for (const [i, change] of kinds.entries()) {
      const entry = await signed(host.client.id, onState(target, change), [hostSigner]); // the host alone may not sign any of these
      const stop = serveForged([target], [entry]);
      await until(() => target.alarms.length > i, 5_000).catch(() => undefined);
      stop();
      expect(codes(target), `forgery ${i + 1} (${change.kind}) raised no alarm of its own`).toEqual(Array.from({ length: i + 1 }, () => 'integrity_group'));
    }
    expect(target.client.group().dissolved).toBe(false);
    expect(partiesIn(target)).toContain(other.client.memberKey);
  });

  it(`(13) an observer every party promotes becomes a party that receives and sends, with no alarm`, async () => {
    const { host, parties } = await channel(2);
    const observer = await newcomer(host, 'observer');
    await admit(parties, observer, [host]);
    await says(parties[0]!, 'before the promotion', [parties[1]!]);
    for (const p of parties) await p.client.setRole(observer.client.memberKey, 'party');
    await settle([host, ...parties, observer]);
    for (const p of [...parties, observer]) expect(partiesIn(p)).toContain(observer.client.memberKey);
    const [alice, bob] = shuffled(parties) as [Party, Party];
    expect(await codeOf(says(alice, 'to the new party', [bob, observer]))).toBe('ok');
    expect(await codeOf(says(observer, 'from the new party', [alice, bob]))).toBe('ok');
    for (const p of [host, alice, bob, observer]) expect(codes(p)).toEqual([]);
  });

  it(`(14) group pushes held back and delivered in reverse order still converge, with no alarm`, async () => {
    const { host, parties } = await channel(2);
    const [alice, bob] = shuffled(parties) as [Party, Party];
    // The host signs no amendment, so it follows the log from pushes alone: hold them, answer nothing newer.
    const held = mal.hold(host.client.memberKey, (f) => f.type === 'group' && f.rid === undefined);
    const stopAnswering = mal.viewFor(host.client.memberKey, withholdFrom(host.client.group().epoch + 1));
    for (const retentionSec of [3600, 7200]) for (const p of [alice, bob]) await p.client.amendCharter({ retentionSec });
    await until(() => held.frames.filter((f) => f.type === 'group' && f.entries.length > 0).length >= 2);
    expect(host.client.group().charter.retentionSec).not.toBe(7200);
    stopAnswering();
    held.release((frames) => [...frames].reverse());
    await until(() => host.client.group().stateHash === alice.client.group().stateHash);
    expect(host.client.group().charter.retentionSec).toBe(7200);
    await says(bob, 'in order again', [alice]);
    for (const p of [host, alice, bob]) expect(codes(p)).toEqual([]);
  });

  it(`(fork) two parties shown different logs at the same epoch both detect it on the first message`, async () => {
    const { parties } = await channel(2);
    const [alice, bob] = shuffled(parties) as [Party, Party];
    const signers = [await signerOf(alice), await signerOf(bob)];
    const charter = alice.client.group().charter;
    // Both parties signed two different amendments at the same epoch (two proposals in flight):
    // the relay appends one for Alice and the other for Bob.
    const forAlice = await signed(alice.client.id, onState(alice, { kind: 'charter', charter: { ...charter, retentionSec: 3600 } }), signers);
    const forBob = await signed(bob.client.id, onState(bob, { kind: 'charter', charter: { ...charter, retentionSec: 7200 } }), signers);
    const stops = [serveForged([alice], [forAlice]), serveForged([bob], [forBob])];
    await until(() => alice.client.group().epoch === forAlice.epoch && bob.client.group().epoch === forBob.epoch);
    expect(alice.client.group().stateHash).not.toBe(bob.client.group().stateHash);
    const [first, second] = shuffled([alice, bob]) as [Party, Party];
    const s1 = await first.client.sendText('first message after the fork');
    await until(() => second.alarms.some((a) => a.seq === s1.seq));
    expect(second.alarms.filter((a) => a.seq === s1.seq).map((a) => a.code)).toEqual(['integrity_fork']);
    const s2 = await second.client.sendText('and the other way');
    await until(() => first.alarms.some((a) => a.seq === s2.seq));
    expect(first.alarms.filter((a) => a.seq === s2.seq).map((a) => a.code)).toEqual(['integrity_fork']);
    expect(first.messages.some((m) => m.seq === s2.seq) || second.messages.some((m) => m.seq === s1.seq)).toBe(false);
    stops.forEach((s) => s());
  });

  /** A valid change or a message; `who` picks among the members it may apply to. */
  type Step =
    | { readonly op: 'add'; readonly role: 'party' | 'observer' }
    | { readonly op: 'remove' | 'leave' | 'role' | 'say'; readonly who: number }
    | { readonly op: 'amend'; readonly retentionSec: number };
  const stepArb: fc.Arbitrary<Step> = fc.oneof(
    fc.record({ op: fc.constant('add' as const), role: fc.constantFrom('party' as const, 'observer' as const) }),
    fc.record({ op: fc.constantFrom('remove' as const, 'leave' as const, 'role' as const, 'say' as const), who: fc.nat(7) }),
    fc.record({ op: fc.constant('amend' as const), retentionSec: fc.integer({ min: 60, max: 86_400 }) }),
  );

  it(`(property) random valid changes interleaved with messages: every client ends in one state, and every message goes exactly to that state's parties`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(stepArb, { minLength: 3, maxLength: 6 }), async (steps) => {
        const { host, parties } = await channel(3);
        const role = new Map<Party, 'party' | 'observer'>(parties.map((p) => [p, 'party']));
        const members = (): Party[] => [...role.keys()];
        const partiesNow = (): Party[] => members().filter((m) => role.get(m) === 'party');
        const gone: { member: Party; since: number }[] = [];
        let n = 0;
        const done: string[] = [];
        try {
          for (const step of [...steps, { op: 'say' as const, who: n }]) {
            const ps = partiesNow();
            const target = 'who' in step ? members()[step.who % members().length]! : undefined;
            switch (step.op) {
              case 'add': {
                if (members().length + 2 > 8) continue; // the host counts, and the charter cap is 8
                const m = await newcomer(host, step.role);
                await admit(ps, m, [host, ...members().filter((x) => role.get(x) === 'observer')]);
                role.set(m, step.role);
                break;
              }
              case 'remove':
              case 'leave': {
                if (role.get(target!) === 'party' && ps.length <= 2) continue; // keep two parties to talk
                if (step.op === 'leave') await target!.client.leave();
                else for (const p of ps) if (p !== target) await p.client.remove(target!.client.memberKey);
                role.delete(target!);
                gone.push({ member: target!, since: mal.mark() });
                break;
              }
              case 'role': {
                const to = role.get(target!) === 'party' ? 'observer' : 'party';
                if (to === 'observer' && ps.length <= 2) continue;
                for (const p of ps) await p.client.setRole(target!.client.memberKey, to);
                role.set(target!, to);
                break;
              }
              case 'amend':
                for (const p of ps) await p.client.amendCharter({ retentionSec: step.retentionSec });
                break;
              case 'say': {
                await settle([host, ...members()]);
                const from = ps[step.who % ps.length]!;
                const since = mal.mark();
                const text = `message ${++n}`;
                const sent = await from.client.sendText(text);
                const others = ps.filter((p) => p !== from);
                await until(() => others.every((p) => p.messages.some((m) => m.seq === sent.seq)));
                const frame = mal.framesFrom(from.client.memberKey, 'send', since).find((f) => f.clientMsgId === sent.clientMsgId)!;
                expect(Object.keys(frame.headers).sort(), `recipients of ${text}`).toEqual(others.map((p) => p.client.memberKey).sort());
                expect(partiesIn(from).filter((k) => k !== from.client.memberKey)).toEqual(others.map((p) => p.client.memberKey).sort());
                break;
              }
            }
            await settle([host, ...members()]);
            done.push(step.op === 'add' ? `add ${step.role}` : step.op === 'role' ? `role ${role.get(target!)}` : step.op);
          }
          for (const g of gone) expectNothingFor(g.member.client.memberKey, g.since);
          const views = [host, ...members()].map((p) => p.client.group());
          expect(new Set(views.map((v) => v.stateHash)).size).toBe(1);
          expect(partiesIn(host)).toEqual(partiesNow().map((p) => p.client.memberKey).sort());
          for (const p of [host, ...members()]) expect(codes(p), `alarms after ${JSON.stringify(steps)}`).toEqual([]);
        } finally {
          if (process.env.GROUP_ATTACK_TRACE !== undefined) console.log(`property run: ${done.join(', ')}`);
          await Promise.all([host, ...members()].map((p) => p.client.close().catch(() => undefined)));
        }
      }),
      { numRuns: 8, seed: SEED, endOnFailure: true },
    );
  }, 120_000);
});
