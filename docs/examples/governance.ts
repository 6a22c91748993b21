import WebSocket from 'ws';
import { BackchannelError, MemoryKeyStore, convene, join, type ChannelClient, type WebSocketConstructor } from '@backchannel/client-sdk';

const platform = { WebSocket: WebSocket as unknown as WebSocketConstructor };
const store = () => new MemoryKeyStore();

/** What the example observed, step by step. */
export interface GovernanceTour {
  carolPendingAfterOneApproval: boolean;
  carolActiveAfterAll: boolean;
  hostApproving: string;
  overCap: string;
  removedStatus: string | undefined;
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

const statusOf = async (viewer: ChannelClient, member: string) =>
  (await viewer.refreshRoster()).members.find((m) => m.key === member)?.status;

/** The governance rules, one after another, on `relay`. */
export async function governanceTour(relay: string): Promise<GovernanceTour> {
  // A charter: at most 4 seated members (the host counts), and the host may not remove anyone.
  const host = await convene({ relay, store: store(), platform, charter: { memberCap: 4, hostMayRemove: false } });
  const alice = await join({ invite: await host.invite(), store: store(), platform });
  const bob = await join({ invite: await host.invite(), store: store(), platform });
  await alice.approve(bob.memberKey);
  await bob.approve(alice.memberKey);
  await Promise.all([alice.whenActive(), bob.whenActive()]);

  // A later member needs every active party's signed approval; the host's is not enough.
  const carol = await join({ invite: await host.invite(), store: store(), platform });
  const hostApproving = await codeOf(host.approve(carol.memberKey));
  await alice.approve(carol.memberKey);
  const carolPendingAfterOneApproval = (await statusOf(alice, carol.memberKey)) === 'pending';
  await bob.approve(carol.memberKey);
  await carol.whenActive();
  const carolActiveAfterAll = (await statusOf(alice, carol.memberKey)) === 'active';

  // The cap counts the host, so a fifth member cannot redeem.
  const overCap = await codeOf(host.invite().then((link) => join({ invite: link, store: store(), platform })));

  // Removal: every other party votes; the removed member's connection is cut.
  await alice.remove(carol.memberKey);
  await bob.remove(carol.memberKey);
  const removedStatus = await statusOf(alice, carol.memberKey);

  // Any party dissolves: the relay deletes the channel's ciphertext, every client deletes its
  // channel state and closes, so nothing more can be sent (`closed`).
  await alice.dissolve();
  const afterDissolve = await codeOf(bob.sendText('too late'));

  await Promise.all([carol.close(), bob.close(), host.close()]);
  return { carolPendingAfterOneApproval, carolActiveAfterAll, hostApproving, overCap, removedStatus, afterDissolve };
}
