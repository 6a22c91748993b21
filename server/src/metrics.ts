import { createRequire } from 'node:module';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The server package's version, for `backchannel_build_info` and `backchannel --version`. */
export const VERSION: string = (createRequire(import.meta.url)('../package.json') as { version: string }).version;

/**
 * prom-client's default gauges whose names end in `_total`, which Prometheus reserves for
 * counters (`promtool check metrics` fails on them); `nodejs_active_*{type}` carry the same counts.
 */
const MISNAMED_DEFAULTS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

/** How long one queue-depth sample serves scrapes. */
const QUEUE_SAMPLE_MS = 5_000;

/** The relay's Prometheus metrics, one registry per relay instance. */
export class Metrics {
  readonly registry = new Registry();
  readonly connections = new Gauge({ name: 'backchannel_connections', help: 'Open authenticated WebSocket connections', registers: [this.registry] });
  readonly framesIn = new Counter({ name: 'backchannel_frames_in_total', help: 'Frames received, by type', labelNames: ['type'], registers: [this.registry] });
  readonly framesOut = new Counter({ name: 'backchannel_frames_out_total', help: 'Frames sent, by type', labelNames: ['type'], registers: [this.registry] });
  readonly errors = new Counter({ name: 'backchannel_errors_total', help: 'Errors answered, by code', labelNames: ['code'], registers: [this.registry] });
  readonly ackLatency = new Histogram({
    name: 'backchannel_ack_latency_seconds',
    help: 'Time from receiving a send to acking it (durable commit included)',
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly batchSize = new Histogram({
    name: 'backchannel_group_commit_batch_size',
    help: 'Messages per group-commit transaction, by path: one round trip (fast) or under row locks (locked)',
    labelNames: ['path'],
    buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500],
    registers: [this.registry],
  });
  readonly commitPhase = new Histogram({
    name: 'backchannel_group_commit_phase_seconds',
    help: 'Where a group-commit batch spends its time: queue (its oldest send waiting for the batch), commit (round trips and fsync), handout (deliveries and acks)',
    labelNames: ['phase'],
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  /** Counts live subscriptions; set by the relay, read at each scrape. */
  subscriptionsSource: (() => number) | undefined;
  readonly subscriptions: Gauge = new Gauge({
    name: 'backchannel_subscriptions',
    help: 'Live channel subscriptions',
    registers: [this.registry],
    collect: () => {
      if (this.subscriptionsSource !== undefined) this.subscriptions.set(this.subscriptionsSource());
    },
  });
  readonly durable = new Gauge({
    name: 'backchannel_database_durable',
    help: 'Whether PostgreSQL has fsync, synchronous_commit and full_page_writes on (1) or not (0), re-checked while running',
    registers: [this.registry],
  });
  readonly buildInfo = new Gauge({
    name: 'backchannel_build_info',
    help: 'Always 1; the labels name the relay version and the Node.js version',
    labelNames: ['version', 'nodejs'],
    registers: [this.registry],
  });
  readonly formalFeedBufferedPeak = new Gauge({
    name: 'backchannel_formal_feed_buffered_bytes_peak',
    help: 'Most bytes one public formal-feed socket held unsent since the relay started (bounded by the feed\'s high-water mark plus one record)',
    registers: [this.registry],
  });
  readonly httpRateLimited = new Counter({ name: 'backchannel_http_rate_limited_total', help: 'HTTP requests refused with 429 by the per-address rate limit', registers: [this.registry] });
  /** Counts queued messages; set by the relay once its database is open, sampled at scrapes. */
  queueDepthSource: (() => Promise<number>) | undefined;
  #queueSampledAt = Number.NEGATIVE_INFINITY;
  readonly queueDepth: Gauge = new Gauge({
    name: 'backchannel_queue_depth',
    help: 'Stored messages not yet acknowledged, counted per recipient (database-wide, sampled at most every 5 s)',
    registers: [this.registry],
    collect: async () => {
      // The count reads the unacknowledged tail of every channel: with a large backlog and a
      // fast scraper it would load the database, so one sample serves scrapes for 5 s.
      if (this.queueDepthSource === undefined || performance.now() - this.#queueSampledAt < QUEUE_SAMPLE_MS) return;
      this.#queueSampledAt = performance.now();
      // A failed sample (database down, statement timeout) keeps the last value.
      await this.queueDepthSource().then((n) => this.queueDepth.set(n), () => undefined);
    },
  });
  /** The pool's counts; set by the relay once its database is open, read at each scrape. */
  poolSource: (() => { total: number; idle: number; waiting: number }) | undefined;
  readonly dbPool: Gauge<'state'> = new Gauge({
    name: 'backchannel_db_pool_clients',
    help: 'Database pool clients, by state (read before the scrape makes its own queries)',
    labelNames: ['state'],
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    for (const name of MISNAMED_DEFAULTS) this.registry.removeSingleMetric(name);
    this.buildInfo.set({ version: VERSION, nodejs: process.version }, 1);
  }

  /**
   * The exposition text. The pool is read first: the scrape's own query (the queue depth) would
   * otherwise show up as a busy or waiting client on an idle relay.
   */
  async scrape(): Promise<string> {
    const p = this.poolSource?.();
    if (p !== undefined) {
      this.dbPool.set({ state: 'total' }, p.total);
      this.dbPool.set({ state: 'idle' }, p.idle);
      this.dbPool.set({ state: 'waiting' }, p.waiting);
    }
    return this.registry.metrics();
  }
}
