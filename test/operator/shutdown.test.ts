import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import type { StateChange } from '@backchannel/client-sdk';
import { toBase64Url, type RelayFrameOf } from '@backchannel/client-sdk/protocol';
import { openChannel, reconnected, type RawMember } from '../support/members.js';
import { freePort } from '../support/ports.js';
import { RelayProcess } from '../support/relay-process.js';
import { createTestDatabase } from '../support/relay.js';
import { until } from '../support/sdk.js';

const SHUTDOWN_MS = 5_000;

describe('graceful shutdown on SIGTERM', () => {
  let relay: RelayProcess | undefined;
  afterAll(async () => {
    await relay?.kill9();
  });

  it('under load: tells clients to reconnect, exits 0 within the bound, and loses no acknowledged message', async () => {
    const databaseUrl = await createTestDatabase();
    relay = new RelayProcess(await freePort(), { DATABASE_URL: databaseUrl, BACKCHANNEL_SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_MS) });
    await relay.start();
    const ch = await openChannel(relay.url, 2);
    const [alice, bob] = ch.parties as [RawMember, RawMember];
    const bobStates: StateChange[] = [];
    bob.conn.onStateChange((c) => bobStates.push(c));

    const acked = new Set<string>();
    let stopLoad = false;
    const sender = async (lane: number): Promise<void> => {
      for (let i = 0; !stopLoad; i++) {
        const id = `l${lane}-${i}`;
        await alice.conn
          .request({ type: 'send', channel: ch.channel, clientMsgId: id, headers: { [bob.key]: 'AA' }, body: toBase64Url(new Uint8Array(256)), commitment: toBase64Url(new Uint8Array(32)) }, { retry: true })
          .then(() => acked.add(id), () => undefined);
      }
    };
    const lanes = Array.from({ length: 8 }, (_, lane) => sender(lane));
    await until(() => acked.size >= 200);

    const started = Date.now();
    const code = await relay.stop();
    const took = Date.now() - started;
    stopLoad = true;
    expect(code).toBe(0);
    expect(took).toBeLessThan(SHUTDOWN_MS + 5_000);
    await until(() => bobStates.some((s) => s.reason === 'relay_reconnect'));
    const ackedAtStop = new Set(acked);

    // Everything acked is in the database...
    const db = new pg.Client({ connectionString: databaseUrl });
    await db.connect();
    const { rows } = await db.query<{ client_msg_id: string; seq: string }>('select client_msg_id, seq from messages');
    await db.end();
    const stored = new Set(rows.map((r) => r.client_msg_id));
    const storedSeqs = rows.map((r) => r.seq);
    for (const id of ackedAtStop) expect(stored.has(id), `acked ${id} not stored`).toBe(true);

    // ...and reaches the recipient after a restart.
    await relay.start();
    await Promise.allSettled(lanes);
    await alice.conn.close();
    const bob2 = reconnected(relay.url, bob);
    await bob.conn.close();
    const got = new Set<string>();
    let last = 0;
    await bob2.conn.connect();
    bob2.conn.subscribe(ch.channel, {
      after: () => last,
      deliver: async (f: RelayFrameOf<'deliver'>) => {
        got.add(String(f.seq));
        last = f.seq;
      },
    });
    // (Sends still retrying at the stop may commit after the restart: those arrive too.)
    await until(() => storedSeqs.every((q) => got.has(q)), 20_000);
    expect(storedSeqs.every((q) => got.has(q))).toBe(true);
    await bob2.conn.close();
    await ch.host.conn.close();
  });
});
