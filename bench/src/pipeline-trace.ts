/**
 * The relay's commit pipeline over one measured run, from the histograms it exports on
 * `/metrics` (scraped before and after the run; the difference is the run's): how many batches,
 * their mean size, and the mean time a batch's oldest send waited in the queue, the commit took
 * (round trip and fsync) and handing the results out took (deliveries and acks). The same
 * figures a per-batch trace would give, without slowing the relay down to write one.
 */
import { BENCH_METRICS_TOKEN } from './relay-under-test.js';

/** Per-run figures of the commit pipeline. */
export interface PipelineTrace {
  readonly batches: number;
  readonly meanBatch: number;
  /** Mean ms the oldest send of a batch waited for it. */
  readonly queueMs: number;
  readonly commitMs: number;
  readonly handoutMs: number;
  /** `overloaded` answers. */
  readonly refused: number;
}


type Sample = Map<string, number>;

/** Reads the relay's metrics that the trace needs. */
export async function scrapePipeline(relayUrl: string): Promise<Sample> {
  const res = await fetch(new URL('/metrics', relayUrl), { headers: { authorization: `Bearer ${BENCH_METRICS_TOKEN}` } });
  const text = await res.text();
  const out: Sample = new Map();
  for (const line of text.split('\n')) {
    const m = /^(backchannel_group_commit_(?:phase_seconds|batch_size)_(?:sum|count)|backchannel_errors_total)(\{[^}]*\})? ([0-9.e+-]+)$/.exec(line);
    if (m === null) continue;
    const labels = m[2] ?? '';
    const name = m[1]!.startsWith('backchannel_errors_total') ? (labels.includes('"overloaded"') ? 'refused' : undefined) : `${m[1]}${/phase="(\w+)"/.exec(labels)?.[1] ?? ''}`;
    if (name !== undefined) out.set(name, (out.get(name) ?? 0) + Number(m[3]));
  }
  return out;
}

/** The trace of the run between two scrapes. */
export function pipelineBetween(before: Sample, after: Sample): PipelineTrace {
  const d = (k: string): number => (after.get(k) ?? 0) - (before.get(k) ?? 0);
  const batches = d('backchannel_group_commit_batch_size_count');
  const per = (sum: number): number => (batches > 0 ? Math.round((sum / batches) * 100) / 100 : 0);
  return {
    batches,
    meanBatch: per(d('backchannel_group_commit_batch_size_sum')),
    queueMs: per(d('backchannel_group_commit_phase_seconds_sumqueue') * 1000),
    commitMs: per(d('backchannel_group_commit_phase_seconds_sumcommit') * 1000),
    handoutMs: per(d('backchannel_group_commit_phase_seconds_sumhandout') * 1000),
    refused: d('refused'),
  };
}
