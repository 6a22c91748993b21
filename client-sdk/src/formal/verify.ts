import { verifyOpening } from '../crypto/franking.js';
import { verifyCheckpoint, verifyConsent, verifyHandover } from '../crypto/signatures.js';
import { fromBase64Url, fromUtf8, toBase64Url, type DisclosureContent } from '../protocol/index.js';
import { sodium, sodiumReady } from '../sodium.js';
import { applyEntry, partiesOf, type GroupLogState } from '../group/group-log.js';
import { disclosureContentHash } from './content-hash.js';
import { FormalLog, FormalRecord, recordHash, type Checkpoint, type RelayKeyLink } from './record.js';

/** What a valid record proves. */
export interface ProvenRecord {
  readonly index: number;
  readonly kind: 'communique' | 'excerpt';
  readonly proposalId: string;
  readonly publishedAt: number;
  readonly releaseAt: number;
  /** Sign keys of the parties who consented (every party at publication). */
  readonly consentingKeys: readonly string[];
  readonly text?: string;
  /** Opened messages: said in this channel, received by the relay at `receivedAt`. Author not named. */
  readonly opened: readonly { seq: number; receivedAt: number; plaintext: string; text?: string }[];
  /** Messages of the range that stay withheld: only their sequence and receipt time. */
  readonly withheld: readonly { seq: number; receivedAt: number }[];
  readonly relayKey: string;
}

/** How many parties co-signed the head of the log as served. */
export interface HeadCosigned {
  readonly index: number;
  readonly hash: string;
  /** Sign keys of the parties (of the head record's group state) whose checkpoint of this head verified. */
  readonly cosigners: readonly string[];
  /** How many parties that state has: the head is the parties' only when every one co-signed. */
  readonly parties: number;
}

/** The outcome of verification: what is proven, or exactly why not. */
export type Verification =
  | { readonly ok: true; readonly channel: string; readonly records: readonly ProvenRecord[]; readonly head?: HeadCosigned }
  | { readonly ok: false; readonly code: 'record_invalid'; readonly index: number; readonly reason: string };

class Invalid extends Error {}

function fail(reason: string): never {
  throw new Invalid(reason);
}

/** Decodes a byte field; a non-canonical encoding is a tampered field, not a crash. */
function bytes(text: string, what: string): Uint8Array {
  return fromBase64Url(text) ?? fail(`${what} is not canonical base64url`);
}

/** Text of an SDK text message (kind byte 1, UTF-8), when it is one. */
function messageText(plaintext: Uint8Array): string | undefined {
  if (plaintext[0] !== 1) return undefined;
  try {
    return fromUtf8(plaintext.subarray(1));
  } catch {
    return undefined;
  }
}

/** Every verified group state of a channel, by epoch, from its log and pinned fingerprint. */
async function groupStates(entries: readonly unknown[], fingerprint: string): Promise<Map<number, GroupLogState>> {
  const states = new Map<number, GroupLogState>();
  let state: GroupLogState | undefined;
  for (const [i, e] of entries.entries()) {
    try {
      state = await applyEntry(state, e);
    } catch (err) {
      fail(`the group log does not verify at entry ${i}: ${err instanceof Error ? err.message : 'invalid'}`);
    }
    states.set(state.epoch, state);
  }
  if (state === undefined) fail('no group log: the parties cannot be proven');
  if (state.fingerprint !== fingerprint) fail('the group log does not start at the pinned fingerprint: another channel, or a forged log');
  return states;
}

/**
 * How long a retired relay record key may still sign after its hand-over: relay nodes pick a
 * rotation up within seconds, and a record one of them signs meanwhile must stay valid.
 */
export const HANDOVER_GRACE_MS = 10 * 60_000;

/** When a relay record key may sign: from `from` (inclusive) until `until` (exclusive), ms. */
interface KeyWindow {
  from: number;
  until: number;
}

/**
 * The validity of each relay record key, walked from the key the channel's genesis pinned
 * through the hand-overs each retiring key signed. Undefined when the genesis pinned none.
 */
async function keyWindows(chain: readonly RelayKeyLink[], pinned: string | undefined): Promise<Map<string, KeyWindow> | undefined> {
  if (pinned === undefined) return undefined;
  const windows = new Map<string, KeyWindow>([[pinned, { from: 0, until: Number.POSITIVE_INFINITY }]]);
  const start = chain.findIndex((l) => l.key === pinned);
  if (start < 0) fail(`the relay key chain does not hold ${pinned}, the key the channel's genesis pinned`);
  let prev = pinned;
  for (const link of chain.slice(start + 1)) {
    const h = link.handover;
    if (h === null || h.from !== prev) fail(`the relay key chain is broken before ${link.key}: it is not handed over by ${prev}`);
    for (const [what, value] of [['relay key', link.key], ['hand-over signature', h.sig]] as const) bytes(value, what);
    if (!(await verifyHandover({ from: prev, to: link.key, validFrom: h.validFrom }, h.sig))) fail(`the hand-over to relay key ${link.key} is not signed by ${prev}`);
    const before = windows.get(prev)!;
    if (h.validFrom < before.from) fail(`relay key ${link.key} takes over before ${prev} did`);
    before.until = h.validFrom + HANDOVER_GRACE_MS;
    windows.set(link.key, { from: h.validFrom, until: Number.POSITIVE_INFINITY });
    prev = link.key;
  }
  return windows;
}

/** Sorted sign keys of the parties of a verified group state. */
function partySignKeys(state: GroupLogState): string[] {
  return partiesOf(state)
    .map((k) => state.members[k]!.signKey)
    .sort();
}

async function check(raw: unknown, relayKeys: readonly string[] | undefined, states: ReadonlyMap<number, GroupLogState>, windows: ReadonlyMap<string, KeyWindow> | undefined): Promise<ProvenRecord> {
  const parsed = FormalRecord.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    fail(`malformed record: ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`);
  }
  const r = parsed.data;
  // Every byte field must be canonical before anything decodes it: a tampered one is a finding.
  for (const [what, value] of [['channel', r.channel], ['proposal id', r.proposalId], ['previous hash', r.prev], ['content hash', r.contentHash], ['hash', r.hash], ['relay key', r.relayKey], ['relay signature', r.sig]] as const) bytes(value, what);
  for (const p of r.parties) bytes(p, 'party key');
  for (const c of r.consents) {
    bytes(c.signKey, 'consent key');
    bytes(c.sig, 'consent signature');
  }
  let content: DisclosureContent;
  if (r.kind === 'communique') {
    if (r.text === undefined || r.items !== undefined) fail('a communiqué must carry text and no items');
    content = { kind: 'communique', text: r.text };
  } else {
    if (r.items === undefined || r.items.length === 0 || r.text !== undefined) fail('an excerpt must carry items and no text');
    content = {
      kind: 'excerpt',
      items: r.items.map((i) => ('opened' in i ? { seq: i.seq, opened: { plaintext: i.opened.plaintext, frankingKey: i.opened.frankingKey } } : { seq: i.seq, withheld: true as const })),
    };
    r.items.forEach((item, k) => {
      if (item.seq !== r.rangeFrom + k) fail(`excerpt items do not cover ${r.rangeFrom}..${r.rangeTo} in order (item ${k} has seq ${item.seq})`);
    });
    if (r.items.length !== r.rangeTo - r.rangeFrom + 1) fail(`excerpt items do not cover ${r.rangeFrom}..${r.rangeTo} exactly`);
    for (const item of r.items) {
      if ('opened' in item && !verifyOpening(bytes(item.opened.commitment, `commitment of seq ${item.seq}`), bytes(item.opened.frankingKey, `franking key of seq ${item.seq}`), bytes(item.opened.plaintext, `plaintext of seq ${item.seq}`))) {
        fail(`opening of seq ${item.seq} does not match its commitment`);
      }
    }
  }
  if (toBase64Url(disclosureContentHash(content)) !== r.contentHash) fail('the content does not match its contentHash');
  const state = states.get(r.epoch);
  if (state === undefined) fail(`the record names group epoch ${r.epoch}, which the group log does not reach`);
  if (state.stateHash !== r.stateHash) fail(`the record's group state differs from the log's at epoch ${r.epoch}`);
  const parties = partySignKeys(state);
  if (parties.length !== r.parties.length || parties.some((p, i) => p !== r.parties[i])) fail('the record lists parties other than the parties of its group state');
  const statement = {
    channel: r.channel,
    proposalId: r.proposalId,
    contentHash: r.contentHash,
    kind: r.kind,
    rangeFrom: r.rangeFrom,
    rangeTo: r.rangeTo,
    releaseAt: r.releaseAt,
    epoch: r.epoch,
    stateHash: r.stateHash,
  };
  const consented = new Set<string>();
  for (const c of r.consents) {
    if (!r.parties.includes(c.signKey)) fail(`consent by ${c.signKey} who is not a listed party`);
    if (!(await verifyConsent(statement, c.sig, c.signKey))) fail(`consent by ${c.signKey} is invalid`);
    consented.add(c.signKey);
  }
  for (const p of r.parties) if (!consented.has(p)) fail(`party ${p} did not consent`);
  if (r.publishedAt < r.releaseAt) fail('published before its release time');
  const { hash, sig, ...unsigned } = r;
  const expected = recordHash(unsigned);
  if (toBase64Url(expected) !== hash) fail('the record hash does not match its contents');
  if (!sodium.crypto_sign_verify_detached(bytes(sig, 'relay signature'), expected, bytes(r.relayKey, 'relay key'))) fail('the relay signature is invalid');
  if (relayKeys !== undefined && !relayKeys.includes(r.relayKey)) fail(`signed by ${r.relayKey}, which is not a relay key given to verify with`);
  if (windows !== undefined) {
    const w = windows.get(r.relayKey);
    if (w === undefined) fail(`signed by ${r.relayKey}, which the relay key chain from the channel's genesis does not reach`);
    if (r.publishedAt < w.from || r.publishedAt >= w.until) {
      fail(`signed by ${r.relayKey}, which was not the relay's key at ${new Date(r.publishedAt).toISOString()} (valid ${new Date(w.from).toISOString()} – ${Number.isFinite(w.until) ? new Date(w.until).toISOString() : 'now'})`);
    }
  }
  return {
    index: r.index,
    kind: r.kind,
    proposalId: r.proposalId,
    publishedAt: r.publishedAt,
    releaseAt: r.releaseAt,
    consentingKeys: [...consented],
    ...(r.text !== undefined ? { text: r.text } : {}),
    opened: (r.items ?? []).flatMap((i) => {
      if (!('opened' in i)) return [];
      const text = messageText(bytes(i.opened.plaintext, 'plaintext'));
      return [{ seq: i.seq, receivedAt: i.receivedAt, plaintext: i.opened.plaintext, ...(text !== undefined ? { text } : {}) }];
    }),
    withheld: (r.items ?? []).flatMap((i) => ('withheld' in i ? [{ seq: i.seq, receivedAt: i.receivedAt }] : [])),
    relayKey: r.relayKey,
  };
}

/** What verification is anchored in: the channel's fingerprint, pinned out of band. */
export interface VerifyOptions {
  /** The channel's fingerprint (its group log's genesis hash), from a party — never from the relay. */
  readonly fingerprint: string;
  /** Relay record keys to accept; without them, any key the log lists. */
  readonly relayKeys?: readonly string[];
  /** For `verifyRecord`: the relay's record-key chain (a log carries its own). */
  readonly relayKeyChain?: readonly RelayKeyLink[];
  /**
   * Refuse a log whose head not every party co-signed (a relay showing this observer a history
   * the parties never saw — a fork, a dropped record, a record a party vetoed — cannot get it).
   */
  readonly requireCosigned?: boolean;
}

function invalid(index: number, reason: string): Verification {
  return { ok: false, code: 'record_invalid', index, reason };
}

/**
 * Verifies one formal record offline against the channel's group log (from its genesis) and
 * pinned fingerprint: its content against its hash, every excerpt opening against its
 * commitment, that its parties are exactly the parties of its group state and every one
 * consented in that state, the record hash and the relay's signature.
 */
export async function verifyRecord(record: unknown, group: readonly unknown[], options: VerifyOptions): Promise<Verification> {
  await sodiumReady();
  const index = typeof record === 'object' && record !== null && 'index' in record && typeof record.index === 'number' ? record.index : 0;
  try {
    const states = await groupStates(group, options.fingerprint);
    const proven = await check(record, options.relayKeys, states, await keyWindows(options.relayKeyChain ?? [], states.get(0)?.relayKey));
    return { ok: true, channel: (record as { channel: string }).channel, records: [proven] };
  } catch (err) {
    if (err instanceof Invalid) return invalid(index, err.message);
    throw err;
  }
}

/**
 * Verifies a whole formal log offline, anchored in the pinned fingerprint: the group log from
 * its genesis, every record as {@link verifyRecord}, their indexes, publication times that never
 * go back, and the hash chain from the first record to the last. With no `relayKeys`, the log's
 * own list is used: pin the relay's record keys too, to rule out a relay signing as another.
 */
export async function verifyLog(log: unknown, options: VerifyOptions): Promise<Verification> {
  await sodiumReady();
  const parsed = FormalLog.safeParse(log);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const at = issue?.path[0] === 'records' && typeof issue.path[1] === 'number' ? issue.path[1] : 0;
    return invalid(at, `malformed log: ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`);
  }
  const { channel, records, relayKeys, group } = parsed.data;
  const keys = options.relayKeys ?? relayKeys;
  let states: Map<number, GroupLogState>;
  let windows: Map<string, KeyWindow> | undefined;
  try {
    states = await groupStates(group, options.fingerprint);
    windows = await keyWindows(parsed.data.relayKeyChain, states.get(0)?.relayKey);
  } catch (err) {
    if (err instanceof Invalid) return invalid(0, err.message);
    throw err;
  }
  if (states.get(0)?.channel !== channel) return invalid(0, 'the group log belongs to another channel');
  const proven: ProvenRecord[] = [];
  let prev = toBase64Url(new Uint8Array(32));
  let publishedAt = 0;
  for (const [i, r] of records.entries()) {
    try {
      if (r.channel !== channel) fail(`record ${i} belongs to another channel`);
      if (r.index !== i) fail(`record ${i} claims index ${r.index}`);
      if (r.prev !== prev) fail(`hash chain broken at record ${i}`);
      if (!relayKeys.includes(r.relayKey)) fail(`record ${i} is signed by a key the log does not list as the relay's`);
      if (r.publishedAt < publishedAt) fail(`record ${i} is dated before the record it follows`);
      proven.push(await check(r, keys, states, windows));
      prev = r.hash;
      publishedAt = r.publishedAt;
    } catch (err) {
      if (err instanceof Invalid) return invalid(i, err.message);
      throw err;
    }
  }
  let cosigned: HeadCosigned | undefined;
  try {
    cosigned = await checkCheckpoints(channel, records, parsed.data.checkpoints, states);
  } catch (err) {
    if (err instanceof Invalid) return invalid(records.length === 0 ? 0 : records.length - 1, err.message);
    throw err;
  }
  if (cosigned === undefined) return { ok: true, channel, records: proven };
  if (options.requireCosigned === true && cosigned.cosigners.length < cosigned.parties) {
    return invalid(cosigned.index, `the log's head is co-signed by ${cosigned.cosigners.length} of ${cosigned.parties} parties`);
  }
  return { ok: true, channel, records: proven, head: cosigned };
}

/**
 * Checks every checkpoint against the records as served: a party's checkpoint naming another
 * hash at an index is a fork (this copy differs from what that party verified). Returns who
 * co-signed the head.
 */
async function checkCheckpoints(channel: string, records: readonly FormalRecord[], checkpoints: readonly Checkpoint[], states: ReadonlyMap<number, GroupLogState>): Promise<HeadCosigned | undefined> {
  const head = records.at(-1);
  const headParties = new Set(head === undefined ? [] : partySignKeys(states.get(head.epoch)!));
  const cosigners = new Set<string>();
  for (const c of checkpoints) {
    for (const [what, value] of [['checkpoint hash', c.hash], ['checkpoint state hash', c.stateHash], ['checkpoint key', c.signKey], ['checkpoint signature', c.sig]] as const) bytes(value, what);
    const state = states.get(c.epoch);
    if (state === undefined || state.stateHash !== c.stateHash) fail(`a checkpoint names group epoch ${c.epoch}, which the group log does not hold`);
    if (!partySignKeys(state).includes(c.signKey)) fail(`a checkpoint is signed by ${c.signKey}, not a party at its epoch`);
    if (!(await verifyCheckpoint({ channel, index: c.index, hash: c.hash, epoch: c.epoch, stateHash: c.stateHash }, c.sig, c.signKey))) fail(`the checkpoint by ${c.signKey} is invalid`);
    const record = records[c.index];
    if (record === undefined) fail(`party ${c.signKey} co-signed record ${c.index}, which this log does not hold: records were dropped`);
    if (record.hash !== c.hash) fail(`party ${c.signKey} co-signed another record at ${c.index}: this log is forked from what the parties verified`);
    if (c.index === head?.index && headParties.has(c.signKey)) cosigners.add(c.signKey);
  }
  return head === undefined ? undefined : { index: head.index, hash: head.hash, cosigners: [...cosigners], parties: headParties.size };
}
