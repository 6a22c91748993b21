import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startTestRelay, type TestRelay } from '../support/relay.js';

/**
 * docs/examples/multi-process/party.ts, run as an integrator would: the host and every party in
 * a process of its own, each with its own FileKeyStore, driven by JSON lines. This test plays
 * the people: it carries invitation links from the host to the invitees, and it makes the
 * out-of-band comparison — a party approves a pending member only after the fingerprint in its
 * `pending` event equals the one the invitee's own process printed at `ready`.
 */

const repoRoot = new URL('../..', import.meta.url).pathname;
const EXAMPLE = 'docs/examples/multi-process/party.ts';
const WAIT_MS = 30_000;

type Event = Record<string, unknown> & { event: string };

/** One seat's process: every event it printed, and a way to wait for the next one that matches. */
class Seat {
  readonly events: Event[] = [];
  readonly stderr: string[] = [];
  /** Milliseconds after spawning at which each event arrived (for diagnosing a slow run). */
  readonly times: number[] = [];
  readonly #spawnedAt = Date.now();
  memberKey = '';
  fingerprint = '';
  #nextId = 0;
  #waiters: { match: (e: Event) => boolean; resolve: (e: Event) => void }[] = [];
  #exited: string | undefined;

  constructor(
    readonly name: string,
    readonly child: ChildProcessWithoutNullStreams,
  ) {
    createInterface({ input: child.stdout }).on('line', (line) => {
      let e: Event;
      try {
        e = JSON.parse(line) as Event;
      } catch {
        this.stderr.push(`(stdout) ${line}`);
        return;
      }
      this.events.push(e);
      this.times.push(Date.now() - this.#spawnedAt);
      this.#waiters = this.#waiters.filter((w) => {
        if (!w.match(e)) return true;
        w.resolve(e);
        return false;
      });
    });
    createInterface({ input: child.stderr }).on('line', (line) => this.stderr.push(line));
    child.on('exit', (code, signal) => {
      this.#exited = `exited (${code ?? signal})`;
    });
  }

  /** The first event (already printed or still to come) that matches. */
  waitFor(match: (e: Event) => boolean, what: string): Promise<Event> {
    const seen = this.events.find(match);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`${this.name}: no ${what} within ${WAIT_MS} ms${this.#exited ? `; process ${this.#exited}` : ''}\nevents: ${JSON.stringify(this.events.map((ev, i) => ({ t: this.times[i], ...ev })))}\nstderr: ${this.stderr.join('\n')}`));
      }, WAIT_MS);
      this.#waiters.push({
        match,
        resolve: (e) => {
          clearTimeout(timer);
          resolve(e);
        },
      });
    });
  }

  /** Sends a command; resolves with its result, or rejects with the code and message it failed with. */
  async command(cmd: string, fields: Record<string, unknown> = {}): Promise<Event> {
    const id = ++this.#nextId;
    this.child.stdin.write(`${JSON.stringify({ cmd, id, ...fields })}\n`);
    const result = await this.waitFor((e) => e.event === 'result' && e.id === id, `result of ${cmd}`);
    if (result.ok !== true) throw new Error(`${this.name}: ${cmd} failed ${String(result.code)}: ${String(result.message)}`);
    return result;
  }

  /** Convenes (host) or joins (party), and keeps the key and fingerprint the process printed. */
  async start(cmd: 'convene' | 'join', fields: Record<string, unknown>): Promise<void> {
    await this.command(cmd, fields);
    const ready = await this.waitFor((e) => e.event === 'ready', 'ready');
    this.memberKey = String(ready.memberKey);
    this.fingerprint = String(ready.fingerprint);
  }

  /** Issues an invitation link (host). */
  async invite(): Promise<string> {
    return String((await this.command('invite', { role: 'party' })).link);
  }

  /**
   * Approves `other` the way a person must: wait for this party's `pending` event for it, compare
   * its fingerprint with the one `other` read out (its `ready` event), and only then approve.
   */
  async approveAfterComparing(other: Seat): Promise<void> {
    const pending = await this.waitFor((e) => e.event === 'pending' && e.member === other.memberKey, `pending for ${other.name}`);
    expect(pending.role).toBe('party');
    expect(pending.fingerprint, `${this.name} sees ${other.name}'s fingerprint as ${other.name} printed it`).toBe(other.fingerprint);
    await this.command('approve', { member: other.memberKey, fingerprint: other.fingerprint });
  }

  /** Waits until this seat's verified group state has exactly `parties` as its parties. */
  async seesParties(parties: readonly Seat[]): Promise<void> {
    const want = parties.map((p) => p.memberKey).sort();
    await this.waitFor((e) => (e.event === 'group' || e.event === 'active') && JSON.stringify([...(e.parties as string[])].sort()) === JSON.stringify(want), `group with ${parties.map((p) => p.name).join(', ')}`);
  }

  alarms(): Event[] {
    return this.events.filter((e) => e.event === 'alarm');
  }
}

describe('docs/examples/multi-process: host and parties in separate processes', () => {
  let relay: TestRelay;
  const seats: Seat[] = [];
  const dirs: string[] = [];

  async function spawnSeat(name: string): Promise<Seat> {
    const dir = await mkdtemp(path.join(tmpdir(), `bc-mp-${name}-`));
    dirs.push(dir);
    const child = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', EXAMPLE, dir], { cwd: repoRoot, stdio: ['pipe', 'pipe', 'pipe'] });
    const seat = new Seat(name, child);
    seats.push(seat);
    return seat;
  }

  /** Every party sends one text; every party receives every other party's. */
  async function everyoneTalks(parties: readonly Seat[]): Promise<void> {
    await Promise.all(parties.map((p) => p.command('send', { text: `hello from ${p.name}` })));
    await Promise.all(
      parties.flatMap((receiver) =>
        parties
          .filter((sender) => sender !== receiver)
          .map((sender) => receiver.waitFor((e) => e.event === 'message' && e.from === sender.memberKey && e.text === `hello from ${sender.name}`, `${sender.name}'s message`)),
      ),
    );
  }

  /** The founding: Alice and Bob approve each other after comparing fingerprints; both become active. */
  async function found(alice: Seat, bob: Seat): Promise<void> {
    await Promise.all([alice.approveAfterComparing(bob), bob.approveAfterComparing(alice)]);
    await Promise.all([alice.waitFor((e) => e.event === 'active', 'active'), bob.waitFor((e) => e.event === 'active', 'active')]);
  }

  /** A later member: every current party approves it after comparing; then every seat sees it. */
  async function admit(newcomer: Seat, parties: readonly Seat[]): Promise<void> {
    await Promise.all(parties.map((p) => p.approveAfterComparing(newcomer)));
    await newcomer.waitFor((e) => e.event === 'active', 'active');
    const all = [...parties, newcomer];
    await Promise.all(all.map((p) => p.seesParties(all)));
  }

  function expectNoAlarms(all: readonly Seat[]): void {
    for (const s of all) expect(s.alarms(), `${s.name} raised no alarm`).toEqual([]);
  }

  beforeAll(async () => {
    relay = await startTestRelay();
  });

  // A test's processes end with it, passed or failed.
  afterEach(() => {
    for (const s of seats) if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
  });

  afterAll(async () => {
    await relay.close();
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  });

  it('invitations issued before and after opening: pending events carry fingerprints, everyone hears everyone, no alarm', async () => {
    const [host, alice, bob, carol] = await Promise.all(['host', 'alice', 'bob', 'carol'].map(spawnSeat));
    await host!.start('convene', { relay: relay.url });
    // Invitations A and B are issued before the channel opens.
    const a = await host!.invite();
    const b = await host!.invite();
    // One after the other: Bob joins while Alice is already pending, so his SDK meets her at join.
    await alice!.start('join', { link: a });
    await bob!.start('join', { link: b });
    await found(alice!, bob!);
    await everyoneTalks([alice!, bob!]);

    // Invitation C is issued after the channel opened; Alice and Bob each get `pending` for Carol.
    const c = await host!.invite();
    await carol!.start('join', { link: c });
    await admit(carol!, [alice!, bob!]);
    await everyoneTalks([alice!, bob!, carol!]);

    expectNoAlarms([host!, alice!, bob!, carol!]);
    await Promise.all([host, alice, bob, carol].map((s) => s!.command('close')));
  }, 90_000);

  it('an invitation issued before opening, redeemed after it opened, works with no alarm (defect 9)', async () => {
    const [host, alice, bob, dave] = await Promise.all(['host2', 'alice2', 'bob2', 'dave'].map(spawnSeat));
    await host!.start('convene', { relay: relay.url });
    // All three invitations are issued before the channel opens; Dave redeems his only after.
    const a = await host!.invite();
    const b = await host!.invite();
    const d = await host!.invite();
    // One after the other: Bob joins while Alice is already pending, so his SDK meets her at join.
    await alice!.start('join', { link: a });
    await bob!.start('join', { link: b });
    await found(alice!, bob!);

    await dave!.start('join', { link: d });
    await admit(dave!, [alice!, bob!]);
    await everyoneTalks([alice!, bob!, dave!]);

    expectNoAlarms([host!, alice!, bob!, dave!]);
    await Promise.all([host, alice, bob, dave].map((s) => s!.command('close')));
  }, 90_000);
});
