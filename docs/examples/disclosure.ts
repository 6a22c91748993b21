import WebSocket from 'ws';
import { MemoryKeyStore, convene, join, verifyLog, type WebSocketConstructor } from '@backchannel/client-sdk';

const platform = { WebSocket: WebSocket as unknown as WebSocketConstructor };

/** What each seat saw. */
export interface DisclosureTour {
  stagesSeenByHost: string[];
  observerFeedRecords: number;
  verified: boolean;
  publishedText: string | undefined;
  excerptOpened: string[];
  excerptWithheld: number[];
}

/** A communiqué and an excerpt, from draft to formal record, seen from every seat. */
export async function disclosureTour(relay: string): Promise<DisclosureTour> {
  const host = await convene({ relay, store: new MemoryKeyStore(), platform });
  const alice = await join({ invite: await host.invite(), store: new MemoryKeyStore(), platform });
  const bob = await join({ invite: await host.invite(), store: new MemoryKeyStore(), platform });
  await alice.approve(bob.memberKey, { fingerprint: await bob.myFingerprint() });
  await bob.approve(alice.memberKey, { fingerprint: await alice.myFingerprint() });
  await Promise.all([alice.whenActive(), bob.whenActive()]);

  // The host's seat: it reads no message, but sees every stage change.
  const stagesSeenByHost: string[] = [];
  host.on('disclosure', (d) => stagesSeenByHost.push(d.stage));

  // An observer's seat: anyone may watch the formal record over a WebSocket, unauthenticated.
  const feed = new WebSocket(`${relay.replace(/^http/, 'ws')}/v1/formal/ws?channel=${host.id}`);
  let observerFeedRecords = 0;
  feed.on('message', () => observerFeedRecords++);

  // A party's seat: draft inside the channel (encrypted), propose, consent, publish.
  const bobHasDraft = new Promise<void>((resolve) => bob.on('message', (m) => m.content.kind === 'draft' && resolve()));
  const communique = await alice.draft({ kind: 'communique', text: 'The parties have met and will meet again.' });
  await bobHasDraft;
  await alice.disclosure.propose(communique); // the relay learns an id and a hash, not the text
  await alice.disclosure.consent(communique); // each client checks the proposal is the draft it read
  await bob.disclosure.consent(communique);
  await alice.disclosure.publish(communique);

  // An excerpt: one message opened, one withheld (the record keeps no commitment for it).
  const said = await alice.sendText('We accept the second draft.');
  const aside = await bob.sendText('Between us: the first draft was better.');
  const bobHasExcerpt = new Promise<void>((resolve) => bob.on('message', (m) => m.content.kind === 'draft' && resolve()));
  const excerpt = await alice.draft({
    kind: 'excerpt',
    items: [
      { seq: said.seq, opened: { plaintext: said.plaintext, frankingKey: said.frankingKey } },
      { seq: aside.seq, withheld: true },
    ],
  });
  await bobHasExcerpt;
  await alice.disclosure.propose(excerpt);
  await alice.disclosure.consent(excerpt);
  await bob.disclosure.consent(excerpt);
  await alice.disclosure.publish(excerpt);

  // The observer verifies offline, pinning the channel's fingerprint (a party gives it out of band:
  // it proves who the parties were) and the relay's published record keys.
  const { recordKeys } = (await (await fetch(`${relay}/.well-known/backchannel.json`)).json()) as { recordKeys: string[] };
  const log: unknown = await (await fetch(`${relay}/v1/formal/${host.id}`)).json();
  const result = await verifyLog(log, { fingerprint: alice.fingerprint, relayKeys: recordKeys });
  await new Promise((r) => setTimeout(r, 200)); // let the feed deliver
  feed.close();
  await Promise.all([alice.close(), bob.close(), host.close()]);
  return {
    stagesSeenByHost,
    observerFeedRecords,
    verified: result.ok,
    publishedText: result.ok ? result.records[0]?.text : undefined,
    excerptOpened: result.ok ? (result.records[1]?.opened.map((o) => o.text ?? '') ?? []) : [],
    excerptWithheld: result.ok ? (result.records[1]?.withheld.map((w) => w.seq) ?? []) : [],
  };
}
