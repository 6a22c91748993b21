import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { FormalLog } from '@backchannel/client-sdk';
import { EXIT, UsageError, parseCommandArgs, type Command } from './command.js';

const HELP = `Usage: backchannel compare <log a> <log b>

Compares two copies of a channel's formal log (files or URLs), as two observers would: the
records must agree index by index, and one copy may only extend the other. Names the first
record where they diverge — a relay that showed them different histories. Verify each copy
with \`backchannel verify --fingerprint\` too: compare checks agreement, not validity.

Exit codes: 0 consistent (one is a prefix of the other), 1 diverged or unreadable, 2 misused.`;

async function load(source: string, cwd: string): Promise<FormalLog> {
  const raw: unknown = /^https?:\/\//.test(source) ? await (await fetch(source)).json() : JSON.parse(await readFile(path.resolve(cwd, source), 'utf8'));
  return FormalLog.parse(raw);
}

/** `backchannel compare <a> <b>`: where two copies of a formal log first diverge. */
export const compareCommand: Command = {
  name: 'compare',
  summary: 'compare two copies of a formal log and name the first divergence',
  help: HELP,
  async run(args, io) {
    const { values, positionals } = parseCommandArgs(args, {}, true);
    if (values.help === true) {
      io.stdout(`${HELP}\n`);
      return EXIT.ok;
    }
    if (positionals.length !== 2) throw new UsageError('compare takes exactly two files or URLs');
    let a: FormalLog;
    let b: FormalLog;
    try {
      [a, b] = await Promise.all([load(positionals[0]!, io.cwd), load(positionals[1]!, io.cwd)]);
    } catch (err) {
      io.stderr(`backchannel: cannot read a formal log: ${err instanceof Error ? err.message : String(err)}\n`);
      return EXIT.failed;
    }
    if (a.channel !== b.channel) {
      io.stdout(`diverged: the copies belong to different channels (${a.channel}, ${b.channel})\n`);
      return EXIT.failed;
    }
    const shared = Math.min(a.records.length, b.records.length);
    for (let i = 0; i < shared; i++) {
      if (a.records[i]!.hash !== b.records[i]!.hash) {
        io.stdout(`diverged at record ${i}: ${a.records[i]!.hash} in the first copy, ${b.records[i]!.hash} in the second\n`);
        return EXIT.failed;
      }
    }
    const longer = a.records.length === b.records.length ? 'the copies hold the same records' : `the ${a.records.length > b.records.length ? 'first' : 'second'} copy extends the other by ${Math.abs(a.records.length - b.records.length)} record(s)`;
    io.stdout(`consistent: ${shared} record(s) agree; ${longer}\n`);
    return EXIT.ok;
  },
};
