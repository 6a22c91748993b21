import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { RelayConnection, sodium, sodiumReady, type StateChange, type WebSocketConstructor } from '@backchannel/client-sdk';
import { startHostileProxy, type HostileProxy } from '../support/hostile-proxy.js';
import { startTestRelay, type TestRelay } from '../support/relay.js';
import { until } from '../support/sdk.js';

describe('the SDK transport heartbeat', () => {
  let relay: TestRelay;
  let proxy: HostileProxy;
  beforeAll(async () => {
    await sodiumReady();
    relay = await startTestRelay();
    proxy = await startHostileProxy(relay.url);
  });
  afterAll(async () => {
    await proxy.close();
    await relay.close();
  });

  it('notices a connection that went silent (half-open) and reconnects, though it only receives', async () => {
    const kp = sodium.crypto_box_keypair();
    const conn = new RelayConnection({
      url: proxy.url,
      identity: { publicKey: kp.publicKey, secretKey: kp.privateKey },
      platform: { WebSocket: WebSocket as unknown as WebSocketConstructor },
      heartbeatMs: 200,
      requestTimeoutMs: 300,
    });
    const changes: StateChange[] = [];
    conn.onStateChange((c) => changes.push(c));
    await conn.connect();
    // The path dies silently: nothing from the relay reaches the client any more.
    proxy.tamper = { toClient: () => [] };
    await until(() => changes.some((c) => c.to === 'reconnecting' && c.reason === 'heartbeat_timeout'), 5_000);
    proxy.tamper = {};
    await until(() => conn.state === 'open', 10_000);
    expect(changes.map((c) => `${c.to}:${c.reason}`)).toEqual(expect.arrayContaining(['reconnecting:heartbeat_timeout', 'open:authenticated']));
    await conn.close();
  });
});
