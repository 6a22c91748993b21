import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { verifyLog, type ProvenRecord, type Verification } from '@backchannel/client-sdk';
import { EXIT, UsageError, parseCommandArgs, type CliIo, type Command } from './command.js';

const HELP = `Usage: backchannel verify <file|url> --fingerprint <channel fingerprint> [--key <relay record key>]

Verifies a channel's formal log offline, anchored in the channel's fingerprint: the signed group
log from its genesis (who the parties were at each record), every party's consent in that state,
every excerpt opening against its commitment, the hash chain and the relay's signature. Prints
what it proves (channel, times, consenting keys, opened and withheld items) or exactly why not.

  <file|url>         a formal log as JSON: a file, or a URL such as
                     http://relay:8787/v1/formal/<channel>
  --fingerprint <f>  the channel's fingerprint (base64url), from a party, out of band. Required:
                     without it nothing proves who the parties were, and verify says so.
  --key <k>          the relay's record-signing key (base64url) to pin. Without it, the keys the
                     log lists are accepted (and the output says so).

Exit codes: 0 valid, 1 invalid, unreadable or not anchored, 2 misused.`;

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

async function load(source: string, cwd: string): Promise<unknown> {
  if (/^https?:\/\//.test(source)) {
    const res = await fetch(source);
    if (!res.ok) throw new Error(`${source} answered HTTP ${res.status}`);
    return res.json();
  }
  return JSON.parse(await readFile(path.resolve(cwd, source), 'utf8')) as unknown;
}

/**
 * `--key <k>` as `--key=<k>` (and so for `--fingerprint`): a base64url value starts with '-'
 * once in 64, and node's parseArgs refuses such a value as ambiguous. What follows is its value.
 */
function keyJoined(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const next = args[i + 1];
    if ((args[i] === '--key' || args[i] === '--fingerprint') && next !== undefined) {
      out.push(`${args[i]}=${next}`);
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
    const { values, positionals } = parseCommandArgs(keyJoined(args), { key: { type: 'string' }, fingerprint: { type: 'string' } }, true);
    if (values.help === true) {
      io.stdout(`${HELP}\n`);
      return EXIT.ok;
    }
    if (positionals.length !== 1) throw new UsageError('verify takes exactly one file or URL');
    let loaded: unknown;
    try {
      loaded = await load(positionals[0]!, io.cwd);
    } catch (err) {
      io.stderr(`backchannel: cannot read ${positionals[0]}: ${err instanceof Error ? err.message : String(err)}\n`);
      return EXIT.failed;
    }
    const fingerprint = typeof values.fingerprint === 'string' ? values.fingerprint : undefined;
    if (fingerprint === undefined) {
      io.stdout('not verified: no channel fingerprint pinned. Give --fingerprint <f> (from a party, out of band): without it nothing proves who the parties were, and a look-alike server could serve any log.\n');
      return EXIT.failed;
    }
    const isLog = typeof loaded === 'object' && loaded !== null && 'records' in loaded;
    if (!isLog) {
      io.stdout('not verified: this is not a formal log. A record alone cannot prove who its parties were; verify the channel\'s log (/v1/formal/<channel>), which carries the group log.\n');
      return EXIT.failed;
    }
    const key = typeof values.key === 'string' ? [values.key] : undefined;
    const result: Verification = await verifyLog(loaded, { fingerprint, ...(key ? { relayKeys: key } : {}) });
    if (!result.ok) {
      io.stdout(`invalid: record ${result.index}: ${result.reason}\n`);
      return EXIT.failed;
    }
    const lines = [`valid: channel ${result.channel} (fingerprint ${fingerprint}), ${result.records.length} record(s); each record's parties are those of the channel's signed group log, and every one consented`];
    if (key === undefined) lines.push('  (relay record keys not pinned: the log\'s own list was accepted; pin one with --key)');
    for (const r of result.records) lines.push(...describe(r));
    io.stdout(`${lines.join('\n')}\n`);
    return EXIT.ok;
  },
};
