import { verifyOpening } from '../crypto/franking.js';
import { verifyConsent } from '../crypto/signatures.js';
import { fromBase64Url, fromUtf8, toBase64Url, type DisclosureContent } from '../protocol/index.js';
import { sodium, sodiumReady } from '../sodium.js';
import { disclosureContentHash } from './content-hash.js';
import { FormalLog, FormalRecord, recordHash } from './record.js';

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

/** The outcome of verification: what is proven, or exactly why not. */
export type Verification =
  | { readonly ok: true; readonly channel: string; readonly records: readonly ProvenRecord[] }
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

async function check(raw: unknown, relayKeys: readonly string[] | undefined): Promise<ProvenRecord> {
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
  const statement = {
    channel: r.channel,
    proposalId: r.proposalId,
    contentHash: r.contentHash,
    kind: r.kind,
    rangeFrom: r.rangeFrom,
    rangeTo: r.rangeTo,
    releaseAt: r.releaseAt,
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

/**
 * Verifies one formal record offline: its content against its hash, every excerpt opening
 * against its commitment, every party's consent signature, the record hash and the relay's
 * signature (against `relayKeys` when given).
 */
export async function verifyRecord(record: unknown, options: { relayKeys?: readonly string[] } = {}): Promise<Verification> {
  await sodiumReady();
  const index = typeof record === 'object' && record !== null && 'index' in record && typeof record.index === 'number' ? record.index : 0;
  try {
    const proven = await check(record, options.relayKeys);
    return { ok: true, channel: (record as { channel: string }).channel, records: [proven] };
  } catch (err) {
    if (err instanceof Invalid) return { ok: false, code: 'record_invalid', index, reason: err.message };
    throw err;
  }
}

/**
 * Verifies a whole formal log offline: every record as {@link verifyRecord}, their indexes, and
 * the hash chain from the first record to the last. With no `relayKeys` given, the log's own
 * list is used: pin the relay's keys (from its well-known URL, fetched once) to rule out a forger.
 */
export async function verifyLog(log: unknown, options: { relayKeys?: readonly string[] } = {}): Promise<Verification> {
  await sodiumReady();
  const parsed = FormalLog.safeParse(log);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const at = issue?.path[0] === 'records' && typeof issue.path[1] === 'number' ? issue.path[1] : 0;
    return { ok: false, code: 'record_invalid', index: at, reason: `malformed log: ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}` };
  }
  const { channel, records, relayKeys } = parsed.data;
  const keys = options.relayKeys ?? relayKeys;
  const proven: ProvenRecord[] = [];
  let prev = toBase64Url(new Uint8Array(32));
  for (const [i, r] of records.entries()) {
    try {
      if (r.channel !== channel) fail(`record ${i} belongs to another channel`);
      if (r.index !== i) fail(`record ${i} claims index ${r.index}`);
      if (r.prev !== prev) fail(`hash chain broken at record ${i}`);
      if (!relayKeys.includes(r.relayKey)) fail(`record ${i} is signed by a key the log does not list as the relay's`);
      proven.push(await check(r, keys));
      prev = r.hash;
    } catch (err) {
      if (err instanceof Invalid) return { ok: false, code: 'record_invalid', index: i, reason: err.message };
      throw err;
    }
  }
  return { ok: true, channel, records: proven };
}
