import WebSocket from 'ws';
import { BackchannelError, MemoryKeyStore, convene, join, type ChannelClient, type WebSocketConstructor } from '@backchannel/client-sdk';

const platform = { WebSocket: WebSocket as unknown as WebSocketConstructor };
const store = () => new MemoryKeyStore();

/** What the example observed, step by step. */
export interface GovernanceTour {
  carolPendingAfterOneApproval: boolean;
  carolActiveAfterAll: boolean;
  hostApproving: string;
  approvingUnchecked: string;
  overCap: string;
  carolGoneAfterRemoval: boolean;
  afterDissolve: string;
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    return BackchannelError.is(err) ? err.code : 'unexpected';
  }
}

/** Whether `member` is in the group state `viewer` verified from the signed log. */
const inGroup = async (viewer: ChannelClient, member: string) => (await viewer.refreshGroup()).members.some((m) => m.key === member);

/** The governance rules, one after another, on `relay`. */
export async function governanceTour(relay: string): Promise<GovernanceTour> {
  // A charter: at most 4 seated members (the host counts), and the host may not remove anyone.
  const host = await convene({ relay, store: store(), platform, charter: { memberCap: 4, hostMayRemove: false } });
  const alice = await join({ invite: await host.invite(), store: store(), platform });
  const bob = await join({ invite: await host.invite(), store: store(), platform });
  // Each approval names the fingerprint the invitee read out (out of band; here in memory).
  await alice.approve(bob.memberKey, { fingerprint: await bob.myFingerprint() });
  await bob.approve(alice.memberKey, { fingerprint: await alice.myFingerprint() });
  await Promise.all([alice.whenActive(), bob.whenActive()]);

  // A later member needs every party's signature in the group log; the host's counts for nothing.
  const carol = await join({ invite: await host.invite(), store: store(), platform });
  const hostApproving = await codeOf(host.approve(carol.memberKey, { fingerprint: await carol.myFingerprint() }));
  const approvingUnchecked = await codeOf(alice.approve(carol.memberKey)); // no fingerprint compared
  await alice.approve(carol.memberKey, { fingerprint: await carol.myFingerprint() });
  const carolPendingAfterOneApproval = !(await inGroup(alice, carol.memberKey));
  await bob.approve(carol.memberKey, { fingerprint: await carol.myFingerprint() });
  await carol.whenActive();
  const carolActiveAfterAll = await inGroup(alice, carol.memberKey);

  // The cap counts the host, so a fifth member cannot redeem.
  const overCap = await codeOf(host.invite().then((link) => join({ invite: link, store: store(), platform })));

  // Removal: every other party signs it; the removed member's connection is cut.
  await alice.remove(carol.memberKey);
  await bob.remove(carol.memberKey);
  const carolGoneAfterRemoval = !(await inGroup(alice, carol.memberKey));

  // Any party dissolves, by a signed entry every client verifies: the relay deletes the channel's
  // ciphertext, every client deletes its channel state and closes, so nothing more can be sent.
  const bobEnded = new Promise((resolve) => bob.on('ended', resolve));
  await alice.dissolve();
  await bobEnded;
  const afterDissolve = await codeOf(bob.sendText('too late'));

  await Promise.all([carol.close(), bob.close(), host.close()]);
  return { carolPendingAfterOneApproval, carolActiveAfterAll, hostApproving, approvingUnchecked, overCap, carolGoneAfterRemoval, afterDissolve };
}
