import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { startTestRelay, type TestRelay } from '../support/relay.js';
import { convenedChannel, until, type Party } from '../support/sdk.js';

/** Every text value of every row of every table of the relay's database. */
async function dumpDatabase(url: string): Promise<string> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const tables = await client.query<{ tablename: string }>(`select tablename from pg_tables where schemaname = 'public'`);
    const parts: string[] = [];
    for (const { tablename } of tables.rows) {
      const rows = await client.query(`select * from "${tablename}"`);
      for (const row of rows.rows as Record<string, unknown>[]) {
        for (const v of Object.values(row)) {
          if (v instanceof Uint8Array) parts.push(Buffer.from(v).toString('latin1'), Buffer.from(v).toString('hex'), Buffer.from(v).toString('base64url'));
          else parts.push(typeof v === 'string' ? v : JSON.stringify(v));
        }
      }
    }
    return parts.join('\n');
  } finally {
    await client.end();
  }
}

describe('parties converse end to end through a real relay', () => {
  let relay: TestRelay;
  const everyone: Party[] = [];

  beforeAll(async () => {
    relay = await startTestRelay();
  });
  afterAll(async () => {
    for (const p of everyone) await p.client.close();
    await relay.close();
  });

  for (const n of [2, 8]) {
    it(`${n} parties: everyone gets everyone else's messages once, in order, and the relay's database and logs hold no plaintext or key`, async () => {
      const { host, parties } = await convenedChannel(relay.url, n, { purpose: `secret purpose ${n} ZEPHYR`, memberCap: n + 1 });
      everyone.push(...parties);
      const texts: string[] = [];
      for (const [i, p] of parties.entries()) {
        for (let j = 0; j < 3; j++) {
          const text = `plaintext-${n}-${i}-${j}-OBSIDIAN`;
          texts.push(text);
          await p.client.sendText(text);
        }
      }
      for (const p of parties) await until(() => p.messages.length === 3 * (n - 1));
      for (const [i, p] of parties.entries()) {
        const got = p.messages.map((m) => (m.content.kind === 'text' ? m.content.text : ''));
        expect(new Set(got).size).toBe(got.length);
        expect(got.sort()).toEqual(texts.filter((t) => !t.startsWith(`plaintext-${n}-${i}-`)).sort());
        expect(p.messages.map((m) => m.seq)).toEqual([...p.messages.map((m) => m.seq)].sort((a, b) => a - b));
        expect(p.alarms).toEqual([]);
      }
      expect(parties[0]!.client.purpose).toBe(`secret purpose ${n} ZEPHYR`);

      const dump = await dumpDatabase(relay.databaseUrl);
      const logs = relay.logs.join('\n');
      for (const t of [...texts, `secret purpose ${n} ZEPHYR`]) {
        expect(dump.includes(t), `database holds ${t}`).toBe(false);
        expect(logs.includes(t), `logs hold ${t}`).toBe(false);
      }
      expect(dump.includes('OBSIDIAN') || dump.includes('ZEPHYR')).toBe(false);
      // No key that decrypts: neither the parties' secret keys nor any franking key is stored.
      for (const p of parties) {
        const secrets = [p.client.memberKey]; // the public key is expected; secrets must not be
        expect(dump.includes(secrets[0]!)).toBe(true);
        const saved = JSON.stringify(await p.store.get(`backchannel/channel/${p.client.id}`));
        const secretValues = [...saved.matchAll(/"(?:dhSecret|signSecret|secretKey|rootKey|chainKey|key)":"([A-Za-z0-9_-]{40,})"/g)].map((m) => m[1]!);
        expect(secretValues.length).toBeGreaterThan(0);
        for (const s of secretValues) {
          expect(dump.includes(s), 'database holds a client secret').toBe(false);
          expect(logs.includes(s), 'logs hold a client secret').toBe(false);
        }
      }
      for (const m of parties[0]!.messages) expect(dump.includes(m.frankingKey)).toBe(false);
      await host.close();
    });
  }
});
