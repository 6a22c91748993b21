import { openChannel, type OpenChannel } from '../../support/members.js';
import type { LoadReport, LoadViolations, SequenceCheck } from '../../support/load.js';

/** The long run (`BC_LONG=1`): the full fault counts and volumes of issue #8. */
export const LONG = process.env.BC_LONG === '1';

/** A uniformly random whole number of milliseconds in [min, max]. */
export const between = (min: number, max: number): number => Math.round(min + Math.random() * (max - min));

/** Resolves after `ms`. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Convenes `channels` open channels of `parties` parties each, a few at a time; the hosts log off. */
export async function openChannels(relayUrl: string, channels: number, parties: number): Promise<OpenChannel[]> {
  const out: OpenChannel[] = [];
  for (let i = 0; i < channels; i += 5) {
    const batch = await Promise.all(Array.from({ length: Math.min(5, channels - i) }, () => openChannel(relayUrl, parties)));
    out.push(...batch);
  }
  await Promise.all(out.map((ch) => ch.host.conn.close()));
  return out;
}

/** One line of figures for the test output (copied into docs/reliability.md). */
export function figures(name: string, data: object): void {
  process.stdout.write(`[reliability] ${name} ${JSON.stringify(data)}\n`);
}

/** Summarises violations and sequence checks: small enough for an assertion message. */
export function summary(v: LoadViolations, seqs: SequenceCheck[] = [], report?: LoadReport): Record<string, unknown> {
  return {
    missing: v.missing.length,
    duplicates: v.duplicates.length,
    order: v.order.length,
    mismatched: v.mismatched.length,
    fatal: v.fatal.length,
    gaps: seqs.reduce((n, s) => n + s.gaps.length, 0),
    headMismatch: seqs.filter((s) => s.head !== s.rows || s.receipts !== s.rows).length,
    examples: [...v.missing.slice(0, 3), ...v.duplicates.slice(0, 3), ...v.order.slice(0, 3), ...v.mismatched.slice(0, 3), ...v.fatal.slice(0, 3)],
    ...(report === undefined ? {} : { acked: report.acked }),
  };
}

/** The all-clear summary {@link summary} must equal. */
export const CLEAN = { missing: 0, duplicates: 0, order: 0, mismatched: 0, fatal: 0, gaps: 0, headMismatch: 0, examples: [] };
