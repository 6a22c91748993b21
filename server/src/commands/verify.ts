import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { verifyLog, verifyRecord, type ProvenRecord, type Verification } from '@backchannel/client-sdk';
import { EXIT, UsageError, parseCommandArgs, type CliIo, type Command } from './command.js';

const HELP = `Usage: backchannel verify <file|url> [--key <relay record key>]

Verifies a formal record, or a whole formal log, offline: every consent signature, every
excerpt opening against its commitment, the hash chain and the relay's signature. Prints what
it proves (channel, times, consenting keys, opened and withheld items) or exactly why it fails.

  <file|url>   a record or log as JSON: a file, or a URL such as
               http://relay:8787/v1/formal/<channel>
  --key <k>    the relay's record-signing key (base64url) to pin. Without it, a URL's relay is
               asked (/.well-known/backchannel.json) and a file's own key list is used.

Exit codes: 0 valid, 1 invalid or unreadable, 2 misused.`;

const iso = (ms: number): string => new Date(ms).toISOString();

function describe(r: ProvenRecord): string[] {
  const lines = [
    `#${r.index} ${r.kind === 'communique' ? 'communiqué' : 'excerpt'} — published ${iso(r.publishedAt)}${r.releaseAt > 0 ? ` (embargoed until ${iso(r.releaseAt)})` : ''}`,
    `  consented by ${r.consentingKeys.length}: ${r.consentingKeys.join(', ')}`,
  ];
  if (r.text !== undefined) lines.push(`  text: ${JSON.stringify(r.text)}`);
  for (const o of r.opened) lines.push(`  opened   seq ${o.seq}, received ${iso(o.receivedAt)}: ${o.text === undefined ? `(binary, ${o.plaintext.length} base64url chars)` : JSON.stringify(o.text)}`);
  for (const w of r.withheld) lines.push(`  withheld seq ${w.seq}, received ${iso(w.receivedAt)}`);
  return lines;
}

async function load(source: string, cwd: string): Promise<{ json: unknown; pinned?: string[] }> {
  if (/^https?:\/\//.test(source)) {
    const res = await fetch(source);
    if (!res.ok) throw new Error(`${source} answered HTTP ${res.status}`);
    const json: unknown = await res.json();
    const wellKnown = await fetch(new URL('/.well-known/backchannel.json', source)).then((r) => (r.ok ? (r.json() as Promise<{ recordKeys?: string[] }>) : undefined)).catch(() => undefined);
    return { json, ...(wellKnown?.recordKeys ? { pinned: wellKnown.recordKeys } : {}) };
  }
  return { json: JSON.parse(await readFile(path.resolve(cwd, source), 'utf8')) as unknown };
}

/**
 * `--key <k>` as `--key=<k>`: a base64url key starts with '-' once in 64, and node's parseArgs
 * refuses such a value as ambiguous. What follows --key is always its value.
 */
function keyJoined(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const next = args[i + 1];
    if (args[i] === '--key' && next !== undefined) {
      out.push(`--key=${next}`);
      i++;
    } else {
      out.push(args[i]!);
    }
  }
  return out;
}

/** `backchannel verify <file|url>`: offline verification of a formal record or log. */
export const verifyCommand: Command = {
  name: 'verify',
  summary: 'verify a formal record or log (file or URL) and print what it proves',
  help: HELP,
  async run(args: string[], io: CliIo): Promise<number> {
    const { values, positionals } = parseCommandArgs(keyJoined(args), { key: { type: 'string' } }, true);
    if (values.help === true) {
      io.stdout(`${HELP}\n`);
      return EXIT.ok;
    }
    if (positionals.length !== 1) throw new UsageError('verify takes exactly one file or URL');
    let loaded: { json: unknown; pinned?: string[] };
    try {
      loaded = await load(positionals[0]!, io.cwd);
    } catch (err) {
      io.stderr(`backchannel: cannot read ${positionals[0]}: ${err instanceof Error ? err.message : String(err)}\n`);
      return EXIT.failed;
    }
    const key = typeof values.key === 'string' ? [values.key] : loaded.pinned;
    const isLog = typeof loaded.json === 'object' && loaded.json !== null && 'records' in loaded.json;
    const result: Verification = isLog
      ? await verifyLog(loaded.json, key ? { relayKeys: key } : {})
      : await verifyRecord(loaded.json, key ? { relayKeys: key } : {});
    if (!result.ok) {
      io.stdout(`invalid: record ${result.index}: ${result.reason}\n`);
      return EXIT.failed;
    }
    const lines = [`valid: channel ${result.channel}, ${result.records.length} record(s)`];
    if (key === undefined) lines.push('  (relay keys taken from the file itself: pin them with --key)');
    for (const r of result.records) lines.push(...describe(r));
    io.stdout(`${lines.join('\n')}\n`);
    return EXIT.ok;
  },
};
