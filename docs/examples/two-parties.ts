import WebSocket from 'ws';
import { MemoryKeyStore, convene, join, type WebSocketConstructor } from '@backchannel/client-sdk';

/** Two parties and a host on `relay`: convene, invite, approve, talk. Returns what Bob heard. */
export async function main(relay: string): Promise<string[]> {
  // Node 20 has no global WebSocket: hand the SDK the `ws` package's (browsers need nothing).
  const platform = { WebSocket: WebSocket as unknown as WebSocketConstructor };

  // The host convenes the channel. It can invite and moderate, but never reads a message.
  const host = await convene({ relay, store: new MemoryKeyStore(), platform, charter: { purpose: 'Harbour talks', memberCap: 4 } });

  // Each invitation is a one-time link, handed over out of band (here: in memory).
  const alice = await join({ invite: await host.invite(), store: new MemoryKeyStore(), platform });
  const bob = await join({ invite: await host.invite(), store: new MemoryKeyStore(), platform });

  // Founding parties approve each other by signing the channel's founding into its group log.
  // Each first compares the other's fingerprint, read out of band (here: in memory).
  await alice.approve(bob.memberKey, { fingerprint: await bob.myFingerprint() });
  await bob.approve(alice.memberKey, { fingerprint: await alice.myFingerprint() });
  await Promise.all([alice.whenActive(), bob.whenActive()]);

  // Compare this out of band to rule out a relay in the middle.
  console.log('safety number', await alice.safetyNumber(bob.memberKey));

  const heard: string[] = [];
  const got = new Promise<void>((resolve) => {
    bob.on('message', (m) => {
      if (m.content.kind === 'text') heard.push(m.content.text);
      resolve();
    });
  });
  bob.on('alarm', (a) => console.error('integrity alarm', a.code, a.message));

  const sent = await alice.sendText('We can accept the draft, with one change.'); // durably stored when this resolves
  console.log('stored as channel message', sent.seq);
  await got;

  await Promise.all([alice.close(), bob.close(), host.close()]);
  return heard;
}
