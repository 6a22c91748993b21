/**
 * One seat of a Backchannel channel — the host or one party — as its own process.
 *
 *   node --conditions=source --import tsx docs/examples/multi-process/party.ts <store-dir>
 *
 * Each seat keeps its keys and session state in a FileKeyStore under <store-dir> (one process per
 * store). The process is driven by one JSON command per line on stdin and reports one JSON event
 * per line on stdout, so any program (a test, a UI, a shell pipe) can play the people involved:
 *
 *   commands (stdin)                                   what they do
 *   {"cmd":"convene","relay":"http://…"}               become the host of a new channel
 *   {"cmd":"invite","role":"party"}                    (host) issue an invitation link
 *   {"cmd":"join","link":"bc2.…"}                      redeem an invitation: this seat is now pending
 *   {"cmd":"approve","member":"…","fingerprint":"…"}   (party) sign a pending member's admission
 *   {"cmd":"send","text":"…"}                          (party) send a text to every other party
 *   {"cmd":"close"}                                    wait for sends to be stored, disconnect, exit
 *
 * Any command may carry an "id"; its result echoes it:
 *   {"event":"result","cmd":"invite","id":…,"ok":true,"link":"bc2.…"}
 *   {"event":"result","cmd":"approve","id":…,"ok":false,"code":"not_verified","message":"…"}
 *
 * Events (stdout), as the SDK reports them:
 *   {"event":"ready","role":…,"memberKey":…,"fingerprint":…,"channel":…,"channelFingerprint":…}
 *   {"event":"pending","member":…,"role":…,"fingerprint":…}   a member awaits THIS party's approval
 *   {"event":"group","epoch":…,"parties":[…],"pending":[…]}   the verified group state changed
 *   {"event":"active"}                                        this seat is in the verified group state
 *   {"event":"message","from":…,"text":…,"seq":…}
 *   {"event":"alarm","code":…,"message":…,"member":…,"seq":…} something did not verify: never ignore it
 *   {"event":"ended","how":"left"|"removed"|"dissolved"}
 *
 * What a person compares out of band (by phone, in person — never over the relay):
 *   - the invitee reads out its `fingerprint` from its `ready` event;
 *   - each party compares it with the `fingerprint` of the matching `pending` event, and only
 *     then sends `approve` with the fingerprint it was read. The SDK checks the two match
 *     (`not_verified` otherwise), so a relay that swapped the invitee's keys is caught here.
 */
import { createInterface } from 'node:readline';
import { join as joinPath } from 'node:path';
import WebSocket from 'ws';
import { BackchannelError, convene, join, type ChannelClient, type WebSocketConstructor } from '@backchannel/client-sdk';
import { FileKeyStore } from '@backchannel/client-sdk/node';

/** A command read from stdin. */
type Command =
  | { cmd: 'convene'; relay: string; id?: unknown }
  | { cmd: 'invite'; role?: 'party' | 'observer'; id?: unknown }
  | { cmd: 'join'; link: string; id?: unknown }
  | { cmd: 'approve'; member: string; fingerprint: string; id?: unknown }
  | { cmd: 'send'; text: string; id?: unknown }
  | { cmd: 'close'; id?: unknown };

const storeDir = process.argv[2];
if (storeDir === undefined) {
  process.stderr.write('usage: party.ts <store-dir>\n');
  process.exit(2);
}

// Node 20 has no global WebSocket: hand the SDK the `ws` package's.
const platform = { WebSocket: WebSocket as unknown as WebSocketConstructor };
// The key store is encrypted at rest; a real app asks its user for the passphrase.
const store = await FileKeyStore.open(joinPath(storeDir, 'keys.json'), { passphrase: process.env.BACKCHANNEL_STORE_PASSPHRASE ?? 'example passphrase: ask your user' });
let client: ChannelClient | undefined;

/** Writes one event as one JSON line on stdout. */
function emit(event: string, fields: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ event, ...fields })}\n`);
}

/** The client this seat convened or joined; commands before that fail `channel_not_found`. */
function seat(): ChannelClient {
  if (client === undefined) throw new BackchannelError('channel_not_found', 'convene or join first');
  return client;
}

/** Reports what this seat's SDK sees, as events. Called once, right after convene or join. */
async function attach(c: ChannelClient): Promise<void> {
  client = c;
  let lastEpoch = -1;
  const parties = (): string[] => c.group().members.filter((m) => m.role === 'party').map((m) => m.key);

  // A pending member awaits this party's approval. Its fingerprint must equal the one the invitee
  // reads out; the program driving this process (a person, in real use) compares the two.
  c.on('pending', (p) => emit('pending', { member: p.key, role: p.role, fingerprint: p.fingerprint }));
  c.on('group', (g) => {
    if (g.epoch === lastEpoch) return;
    lastEpoch = g.epoch;
    emit('group', { epoch: g.epoch, parties: parties(), pending: g.pending.map((p) => p.key) });
  });
  c.on('message', (m) => emit('message', { from: m.from, text: m.content.kind === 'text' ? m.content.text : null, seq: m.seq }));
  // An alarm is the SDK refusing something that did not verify. Report every one.
  c.on('alarm', (a) => emit('alarm', { code: a.code, message: a.message, member: a.member, seq: a.seq }));
  c.on('ended', (how) => emit('ended', { how }));

  emit('ready', {
    role: c.role,
    memberKey: c.memberKey,
    // This seat's own fingerprint: what its person reads out to the parties approving it.
    fingerprint: await c.myFingerprint(),
    channel: c.id,
    // The channel's fingerprint (hash of its genesis): parties may compare it too.
    channelFingerprint: c.fingerprint,
  });
  // Members who redeemed before this seat joined were announced while `join` was still running,
  // before these listeners existed: report them from the verified group view.
  if (c.role === 'party') for (const p of c.group().pending) if (p.key !== c.memberKey) emit('pending', { member: p.key, role: p.role, fingerprint: p.fingerprint });
  // A party becomes active once every party it needs has signed its admission into the log.
  if (c.role !== 'host') void c.whenActive().then(() => emit('active', { parties: parties() }));
}

/** Runs one command; returns the fields of its result. */
async function run(command: Command): Promise<Record<string, unknown>> {
  switch (command.cmd) {
    case 'convene':
      await attach(await convene({ relay: command.relay, store, platform }));
      return {};
    case 'invite':
      // The link goes to the invitee out of band; its secret never reaches the relay.
      return { link: await seat().invite({ role: command.role ?? 'party' }) };
    case 'join':
      await attach(await join({ invite: command.link, store, platform }));
      return {};
    case 'approve':
      // `fingerprint` is the one the invitee read out; the SDK refuses it if it is not the
      // pending member's (`not_verified`).
      await seat().approve(command.member, { fingerprint: command.fingerprint });
      return {};
    case 'send': {
      const sent = await seat().sendText(command.text); // resolves once the relay stored it
      return { seq: sent.seq };
    }
    case 'close':
      await client?.close();
      await store.close();
      return {};
  }
}

// Commands run one at a time, in the order they arrive; events may interleave with results.
const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (line.trim() === '') continue;
  let command: Command;
  try {
    command = JSON.parse(line) as Command;
  } catch {
    emit('result', { ok: false, code: 'bad_command', message: 'not JSON' });
    continue;
  }
  try {
    emit('result', { cmd: command.cmd, id: command.id, ok: true, ...(await run(command)) });
  } catch (err) {
    const code = BackchannelError.is(err) ? err.code : 'unexpected';
    emit('result', { cmd: command.cmd, id: command.id, ok: false, code, message: err instanceof Error ? err.message : String(err) });
  }
  if (command.cmd === 'close') break;
}
// stdin ended or `close` was sent: disconnect and exit.
await client?.close();
process.exit(0);
