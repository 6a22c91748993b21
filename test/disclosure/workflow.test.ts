import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  disclosureContentHash,
  frankingCommitment,
  signConsent,
  verifyLog,
  type ChannelClient,
  type DisclosureState,
  type FormalLog,
  type MemberKeys,
} from '@backchannel/client-sdk';
import { fromBase64Url, toBase64Url, type DisclosureContent } from '@backchannel/client-sdk/protocol';
import { nodeConnection } from '../support/members.js';
import { startTestRelay, type TestRelay } from '../support/relay.js';
import { codeOf, convenedChannel, until, type Party } from '../support/sdk.js';

describe('staged disclosure into the formal record: a host and three parties', () => {
  let relay: TestRelay;
  let host: ChannelClient;
  let alice: Party;
  let bob: Party;
  let carol: Party;

  const log = async (): Promise<FormalLog> => (await fetch(`${relay.url}/v1/formal/${host.id}`)).json() as Promise<FormalLog>;
  const relayKeys = async (): Promise<string[]> => ((await (await fetch(`${relay.url}/.well-known/backchannel.json`)).json()) as { recordKeys: string[] }).recordKeys;

  /** Alice drafts and proposes; everyone holds the draft before anyone consents. */
  async function proposal(content: DisclosureContent, releaseAt = 0): Promise<string> {
    const id = await alice.client.draft(content, { releaseAt });
    await until(() => [bob, carol].every((p) => p.client.drafts().some((d) => d.proposalId === id)));
    await alice.client.disclosure.propose(id);
    return id;
  }

  beforeAll(async () => {
    relay = await startTestRelay();
    const ch = await convenedChannel(relay.url, 3);
    host = ch.host;
    [alice, bob, carol] = ch.parties as [Party, Party, Party];
  });
  afterAll(async () => {
    for (const p of [alice, bob, carol]) await p.client.close();
    await host.close();
    await relay.close();
  });

  it('two consents and one veto publish nothing; all consents publish a verifiable record', async () => {
    const vetoed = await proposal({ kind: 'communique', text: 'Talks are taking place.' });
    await alice.client.disclosure.consent(vetoed);
    await bob.client.disclosure.consent(vetoed);
    const after = await carol.client.disclosure.veto(vetoed);
    expect(after.stage).toBe('vetoed');
    expect(await codeOf(alice.client.disclosure.publish(vetoed))).toBe('disclosure_state');
    expect((await log()).records).toEqual([]);

    const agreed = await proposal({ kind: 'communique', text: 'The parties met in good faith and will meet again.' });
    const stages: DisclosureState['stage'][] = [];
    host.on('disclosure', (d) => stages.push(d.stage));
    for (const p of [alice, bob, carol]) await p.client.disclosure.consent(agreed);
    expect((await alice.client.disclosure.get(agreed)).stage).toBe('consented');
    // The host publishes: it holds no draft (it reads nothing), so the proposer hands it the text.
    const published = await host.disclosure.publish(agreed, { content: { kind: 'communique', text: 'The parties met in good faith and will meet again.' } });
    expect(published.stage).toBe('published');
    const formal = await log();
    expect(formal.records).toHaveLength(1);
    const verified = await verifyLog(formal, { fingerprint: host.fingerprint, relayKeys: await relayKeys() });
    expect(verified.ok).toBe(true);
    if (verified.ok) {
      expect(verified.records[0]!.text).toBe('The parties met in good faith and will meet again.');
      expect(verified.records[0]!.consentingKeys).toHaveLength(3);
    }
    await until(() => stages.includes('published'));
  });

  it('an embargo holds a consented disclosure until its release time; a veto during it means never', async () => {
    const releaseAt = Date.now() + 3_600_000;
    const held = await proposal({ kind: 'communique', text: 'Embargoed statement.' }, releaseAt);
    for (const p of [alice, bob, carol]) await p.client.disclosure.consent(held);
    expect((await alice.client.disclosure.publish(held)).stage).toBe('scheduled');
    const before = (await log()).records.length;
    expect(await relay.releaseEmbargoes(Date.now())).toBe(0);
    expect((await log()).records.length).toBe(before);
    expect(await relay.releaseEmbargoes(releaseAt + 1)).toBe(1);
    const records = (await log()).records;
    expect(records.length).toBe(before + 1);
    expect(records.at(-1)!.text).toBe('Embargoed statement.');
    expect(records.at(-1)!.publishedAt).toBeGreaterThanOrEqual(releaseAt);

    const stopped = await proposal({ kind: 'communique', text: 'Vetoed during its embargo.' }, releaseAt);
    for (const p of [alice, bob, carol]) await p.client.disclosure.consent(stopped);
    expect((await alice.client.disclosure.publish(stopped)).stage).toBe('scheduled');
    expect((await bob.client.disclosure.veto(stopped)).stage).toBe('vetoed');
    expect(await relay.releaseEmbargoes(releaseAt + 1)).toBe(0);
    expect((await log()).records.some((r) => r.text === 'Vetoed during its embargo.')).toBe(false);
  });

  it('refuses a missing consent, a consent for other content, and a wrong excerpt opening', async () => {
    const missing = await proposal({ kind: 'communique', text: 'Missing one consent.' });
    await alice.client.disclosure.consent(missing);
    await bob.client.disclosure.consent(missing);
    expect(await codeOf(alice.client.disclosure.publish(missing))).toBe('consent_missing');

    // A consent signed over other content (as a modified client could send) is refused by the relay.
    const other = await proposal({ kind: 'communique', text: 'The real text.' });
    const badSig = await signConsent(
      { channel: fromBase64Url(host.id)!, proposalId: fromBase64Url(other)!, contentHash: disclosureContentHash({ kind: 'communique', text: 'Some other text.' }), kind: 'communique', rangeFrom: 0, rangeTo: 0, releaseAt: 0, epoch: bob.client.group().epoch, stateHash: bob.client.group().stateHash },
      (await savedSelf(bob)).signSecret,
    );
    expect(await codeOf(bobRaw(other, toBase64Url(badSig)))).toBe('consent_invalid');

    // An excerpt whose opening does not match the relay's stored commitment.
    const s1 = await alice.client.sendText('first line');
    const s2 = await bob.client.sendText('second line');
    const lie = toBase64Url(new TextEncoder().encode('\u0001words never said'));
    const wrong = await proposal({
      kind: 'excerpt',
      items: [
        { seq: s1.seq, opened: { plaintext: lie, frankingKey: s1.frankingKey } },
        { seq: s2.seq, withheld: true },
      ],
    });
    // Each party's client checks the opening against the commitment it received itself, and refuses.
    for (const p of [alice, bob, carol]) expect(await codeOf(p.client.disclosure.consent(wrong))).toBe('excerpt_mismatch');
    expect(alice.client.disclosure.review(wrong)).toEqual([
      { seq: s1.seq, opened: true, author: alice.client.memberKey, matches: false },
      { seq: s2.seq, opened: false, author: bob.client.memberKey, matches: true },
    ]);
    // Modified clients that consent anyway: the relay checks the opening against its stored commitment.
    const state = await alice.client.disclosure.get(wrong);
    for (const p of [alice, bob, carol]) {
      const self = await savedSelf(p);
      const { epoch, stateHash } = p.client.group();
      const sig = await signConsent(
        { channel: fromBase64Url(host.id)!, proposalId: fromBase64Url(wrong)!, contentHash: fromBase64Url(state.contentHash)!, kind: 'excerpt', rangeFrom: state.rangeFrom, rangeTo: state.rangeTo, releaseAt: 0, epoch, stateHash },
        self.signSecret,
      );
      await rawConsent(p, wrong, toBase64Url(sig));
    }
    expect(await codeOf(alice.client.disclosure.publish(wrong))).toBe('opening_invalid');
  });

  it('refuses to publish with a consent from a member removed since it consented', async () => {
    const ch = await convenedChannel(relay.url, 3);
    const [a, b, c] = ch.parties as [Party, Party, Party];
    const id = await a.client.draft({ kind: 'communique', text: 'Agreed by three.' });
    await until(() => [b, c].every((p) => p.client.drafts().some((d) => d.proposalId === id)));
    await a.client.disclosure.propose(id);
    for (const p of [a, b, c]) await p.client.disclosure.consent(id);
    await a.client.remove(c.client.memberKey);
    await b.client.remove(c.client.memberKey);
    await until(async () => !(await a.client.refreshGroup()).members.some((m) => m.key === c.client.memberKey));
    expect(await codeOf(a.client.disclosure.publish(id))).toBe('consent_invalid');
    for (const p of [a, b, c]) await p.client.close();
    await ch.host.close();
  });

  /** A party's own keys, from its key store. */
  async function savedSelf(p: Party): Promise<MemberKeys> {
    return ((await p.store.get(`backchannel/channel/${host.id}`)) as { group: { self: MemberKeys } }).group.self;
  }

  /** Bob sends a consent frame with a given signature (what a modified client could do). */
  function bobRaw(proposalId: string, sig: string): Promise<unknown> {
    return rawConsent(bob, proposalId, sig);
  }

  /** `p` sends a consent frame with a given signature, past its client's checks. */
  async function rawConsent(p: Party, proposalId: string, sig: string): Promise<unknown> {
    const self = await savedSelf(p);
    const c = nodeConnection(relay.url, { publicKey: fromBase64Url(self.dhPublic)!, secretKey: fromBase64Url(self.dhSecret)! });
    await c.connect();
    try {
      return await c.request({ type: 'disclosure.consent', channel: host.id, proposalId, sig });
    } finally {
      await c.close();
    }
  }

  it('publishes an excerpt whose withheld item carries no commitment: a later leak of it cannot be checked', async () => {
    const s1 = await alice.client.sendText('on the record');
    const s2 = await bob.client.sendText('off the record');
    const s3 = await carol.client.sendText('also on the record');
    const id = await proposal({
      kind: 'excerpt',
      items: [
        { seq: s1.seq, opened: { plaintext: s1.plaintext, frankingKey: s1.frankingKey } },
        { seq: s2.seq, withheld: true },
        { seq: s3.seq, opened: { plaintext: s3.plaintext, frankingKey: s3.frankingKey } },
      ],
    });
    for (const p of [alice, bob, carol]) await p.client.disclosure.consent(id);
    expect((await alice.client.disclosure.publish(id)).stage).toBe('published');
    const formal = await log();
    const verified = await verifyLog(formal, { fingerprint: host.fingerprint, relayKeys: await relayKeys() });
    expect(verified.ok ? "ok" : verified.reason).toBe("ok");
    const record = formal.records.at(-1)!;
    const withheld = record.items!.find((i) => i.seq === s2.seq)!;
    expect('opened' in withheld).toBe(false);
    // The leaked opening's commitment appears nowhere in the log: nothing to check it against.
    const leaked = toBase64Url(frankingCommitment(fromBase64Url(s2.frankingKey)!, fromBase64Url(s2.plaintext)!));
    expect(JSON.stringify(formal)).not.toContain(leaked);
    if (verified.ok) {
      expect(verified.records.at(-1)!.opened.map((o) => o.text)).toEqual(['on the record', 'also on the record']);
      expect(verified.records.at(-1)!.withheld.map((w) => w.seq)).toEqual([s2.seq]);
    }
  });

  it('an unpublished message cannot be proven to outsiders: the relay signs nothing but formal records', async () => {
    const secret = await alice.client.sendText('never published');
    const commitment = toBase64Url(frankingCommitment(fromBase64Url(secret.frankingKey)!, fromBase64Url(secret.plaintext)!));
    expect(JSON.stringify(await log())).not.toContain(commitment);
    const columns = await relay.context.db.kysely.introspection.getTables();
    const signed = columns.flatMap((t) => t.columns.filter((c) => c.name === 'sig').map((c) => `${t.name}.${c.name}`)).sort();
    // Signature columns: members' own (group-log signatures waiting for a proposal to complete, consents, prekeys) — never the relay's over receipts.
    expect(signed).toEqual(['disclosure_consents.sig', 'group_signatures.sig', 'signed_prekeys.sig']);
  });

  it('changing any byte of a published log makes verification fail and say why (property-based)', async () => {
    // A log of its own making, whatever ran before: a communiqué and an excerpt.
    const said = await alice.client.sendText('for the property test');
    const withheld = await bob.client.sendText('kept back');
    for (const content of [
      { kind: 'communique' as const, text: 'Property-tested statement.' },
      { kind: 'excerpt' as const, items: [{ seq: said.seq, opened: { plaintext: said.plaintext, frankingKey: said.frankingKey } }, { seq: withheld.seq, withheld: true as const }] },
    ]) {
      const id = await proposal(content);
      for (const p of [alice, bob, carol]) await p.client.disclosure.consent(id);
      expect((await alice.client.disclosure.publish(id)).stage).toBe('published');
    }
    const formal = await log();
    expect(formal.records.length).toBeGreaterThanOrEqual(2);
    const text = JSON.stringify(formal);
    const keys = await relayKeys();
    const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_';
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: text.length - 1 }), fc.nat({ max: alphabet.length - 1 }), async (at, pick) => {
        let replacement = alphabet[pick]!;
        if (replacement === text[at]) replacement = alphabet[(pick + 1) % alphabet.length]!;
        const tampered = text.slice(0, at) + replacement + text.slice(at + 1);
        let parsed: unknown;
        try {
          parsed = JSON.parse(tampered);
        } catch {
          return; // not even JSON: nothing to verify
        }
        const result = await verifyLog(parsed, { fingerprint: host.fingerprint, relayKeys: keys });
        expect(result.ok).toBe(false);
        if (!result.ok) expect(result.reason.length).toBeGreaterThan(5);
      }),
      { numRuns: 500 },
    );
  });
});
