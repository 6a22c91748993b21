import WebSocket from 'ws';
import { BackchannelError, MemoryKeyStore, convene, join, type ChannelAlarm, type ChannelClient, type ChannelMessage, type CharterInput, type ClientOptions, type KeyStore, type WebSocketConstructor } from '@backchannel/client-sdk';

/** Platform pieces for the SDK in Node 20 (no global WebSocket). */
export const nodePlatform = { WebSocket: WebSocket as unknown as WebSocketConstructor };

/** A party as a test drives it: its client, and everything its listeners saw. */
export interface Party {
  readonly client: ChannelClient;
  readonly store: KeyStore;
  readonly messages: ChannelMessage[];
  readonly alarms: ChannelAlarm[];
}

/** Wraps a client with recorders of its messages and alarms. */
export function observe(client: ChannelClient, store: KeyStore): Party {
  const party: Party = { client, store, messages: [], alarms: [] };
  client.on('message', (m) => party.messages.push(m));
  client.on('alarm', (a) => party.alarms.push(a));
  return party;
}

/** The error code a promise rejects with (`ok` when it resolves); anything but a BackchannelError is rethrown. */
export async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    if (BackchannelError.is(err)) return err.code;
    throw err;
  }
}

/** Waits until `check` holds, polling. */
export async function until(check: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out waiting for a condition');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * The whole SDK flow: a host convenes, `n` founding parties join by invitation and approve each
 * other (comparing fingerprints), and every party sees every other in its verified group state.
 * `options(i)` adds join options of party `i` (its platform pieces, its prekey rotation).
 */
export async function convenedChannel(
  relay: string,
  n: number,
  charter: CharterInput = {},
  options: (i: number) => Pick<ClientOptions, 'platform' | 'prekeyRotation'> = () => ({}),
): Promise<{ host: ChannelClient; parties: Party[] }> {
  const host = await convene({ relay, store: new MemoryKeyStore(), platform: nodePlatform, charter });
  const parties: Party[] = [];
  for (let i = 0; i < n; i++) {
    const link = await host.invite();
    const store = new MemoryKeyStore();
    const extra = options(i);
    parties.push(observe(await join({ invite: link, store, ...extra, platform: { ...nodePlatform, ...extra.platform } }), store));
  }
  for (const a of parties) for (const b of parties) if (a !== b) await a.client.approve(b.client.memberKey, { fingerprint: await b.client.myFingerprint() });
  for (const p of parties) {
    await until(async () => {
      const group = await p.client.refreshGroup();
      return group.members.filter((m) => m.role === 'party').length === n;
    });
  }
  return { host, parties };
}
