import { createServer, type IncomingMessage, type Server } from 'node:http';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { sodium, sodiumReady } from '@backchannel/client-sdk';
import { AUTH_PATHS, CLOSE_CODES, SUBPROTOCOL, toBase64Url } from '@backchannel/client-sdk/protocol';
import { Authenticator } from './auth.js';
import { AuthLimiter } from './auth-limiter.js';
import { authenticateUpgrade } from './authenticate-upgrade.js';
import type { Config } from './config.js';
import { Connection } from './connection.js';
import { ConnectionRegistry } from './connection-registry.js';
import { applyRosterChange } from './roster-events.js';
import { RetentionSweeper } from './retention.js';
import { EmbargoScheduler } from './disclosure/embargo.js';
import { FormalFeed } from './disclosure/feed.js';
import { formalRoutes } from './disclosure/routes.js';

/** The formal record's public WebSocket feed. */
const FORMAL_FEED_PATH = '/v1/formal/ws';
import type { RelayContext } from './context.js';
import { connectDb, type Db } from './db/connect.js';
import { assertDurable, DurabilityMonitor } from './db/durability.js';
import { startEmbeddedPostgres, type EmbeddedDatabase } from './db/embedded.js';
import { migrateToLatest } from './db/migrate.js';
import { admissionLimits } from './admission.js';
import { Hub } from './delivery/hub.js';
import { NotifyListener, ROSTER_NOTIFY_CHANNEL } from './delivery/notify-listener.js';
import { httpHandler, listen, metricsServer, type RouteHandler } from './http.js';
import { createLogger, type Logger } from './logger.js';
import { Metrics } from './metrics.js';
import { PrekeyFetchLimiter } from './prekey-fetch-limit.js';
import { ChannelCache } from './store/channel-cache.js';
import { CursorStore } from './store/cursors.js';
import { MessageLog } from './store/message-log.js';
import { useNonce } from './store/auth-nonces.js';
import { countQueuedMessages } from './store/queue-depth.js';
import { LiveRelayKeys } from './store/relay-keys.js';
import { OperatorError } from './operator-error.js';

/** A running relay. */
export interface Relay {
  /** `http://host:port` of the relay. */
  readonly url: string;
  readonly port: number;
  /** `http://host:port/metrics` when BACKCHANNEL_METRICS_PORT serves metrics apart. */
  readonly metricsUrl: string | undefined;
  /** The database URL the relay uses (embedded or given). */
  readonly databaseUrl: string;
  readonly context: RelayContext;
  /** Publishes embargoed disclosures due by `now`; resolves with how many. */
  releaseEmbargoes(now?: number): Promise<number>;
  /** Runs a retention sweep now (as of `now`); resolves with the number of messages purged. */
  sweepRetention(now?: number): Promise<number>;
  /**
   * Graceful stop: `/readyz` answers 503 for BACKCHANNEL_DRAIN_DELAY_MS (a load balancer's
   * warning), then refuse new connections, tell clients to reconnect, finish in-flight commits,
   * close the database. Resolves within the drain delay plus the configured shutdown bound.
   */
  close(): Promise<void>;
}

/** Options that are not configuration: injected pieces for embedding and tests. */
export interface RelayOptions {
  /** Where JSON log lines go (default stdout). */
  logDestination?: NodeJS.WritableStream;
  /**
   * TEST ONLY: start even when PostgreSQL has `fsync` or `synchronous_commit` off. The
   * reliability suite's negative control uses it to show its checks catch lost acked messages;
   * no configuration variable reaches it, so a deployed relay always refuses such a database.
   */
  unsafeAllowNonDurable?: boolean;
  /** Extra `postgres -c` settings for the embedded database. */
  embeddedSettings?: Record<string, string>;
  /** Extra HTTP routes. */
  routes?: (ctx: RelayContext) => RouteHandler[];
  /**
   * Aborting it before the relay is ready stops the start: everything begun is undone (the
   * embedded database stopped) and the promise rejects with `stopped_before_ready`.
   */
  signal?: AbortSignal;
}

/** Why a first query failed, in one line without the URL (it holds the password). */
function unreachable(config: Config, err: unknown): OperatorError {
  const e = err as { code?: string; message?: string };
  const source = config.DATABASE_URL === undefined ? 'the embedded PostgreSQL' : 'DATABASE_URL';
  return new OperatorError('database_unreachable', `${source}: cannot use the database (${e.code ?? 'error'}: ${e.message ?? String(err)})`, { cause: err });
}

async function openDatabase(config: Config, logger: Logger, options: RelayOptions): Promise<{ url: string; embedded?: EmbeddedDatabase }> {
  if (config.DATABASE_URL !== undefined) return { url: config.DATABASE_URL };
  const embedded = await startEmbeddedPostgres({
    dataDir: config.BACKCHANNEL_DATA_DIR,
    port: config.BACKCHANNEL_EMBEDDED_PG_PORT,
    onLog: (line) => logger.debug({ event: 'postgres', line }),
    ...(options.embeddedSettings ? { settings: options.embeddedSettings } : {}),
  });
  const { leftover } = embedded;
  if (leftover.kind === 'stopped') logger.warn({ event: 'embedded_leftover_stopped', pid: leftover.pid }, 'stopped the PostgreSQL a crashed relay left running on the data folder');
  if (leftover.kind === 'stale') logger.warn({ event: 'embedded_stale_pid_file', pid: leftover.pid }, 'removed a stale postmaster.pid (its PID is not this folder\'s PostgreSQL; that process was left alone)');
  logger.info({ event: 'embedded_database', dataDir: path.resolve(config.BACKCHANNEL_DATA_DIR), port: config.BACKCHANNEL_EMBEDDED_PG_PORT }, 'embedded PostgreSQL running');
  return { url: embedded.url, embedded };
}

/** Warns when the relay's role could do anything in the database (read other databases, run programs). */
async function warnIfSuperuser(db: Db, logger: Logger): Promise<void> {
  const { rows } = await db.pool.query<{ rolsuper: boolean }>('select rolsuper from pg_roles where rolname = current_user');
  if (rows[0]?.rolsuper === true) {
    logger.warn({ event: 'database_superuser' }, 'DATABASE_URL logs in as a PostgreSQL superuser: give the relay a role of its own that owns its database (docs/operator.md)');
  }
}

/** Starts a relay: database (embedded unless DATABASE_URL), migrations, keys, HTTP and WebSocket. */
export async function startRelay(config: Config, options: RelayOptions = {}): Promise<Relay> {
  await sodiumReady();
  const logger = createLogger(config.BACKCHANNEL_LOG_LEVEL, options.logDestination);
  // What to undo, newest first, if the start fails or is stopped before the relay is ready.
  const undo: (() => unknown)[] = [];
  const stopIfAsked = (): void => {
    if (options.signal?.aborted === true) throw new OperatorError('stopped_before_ready', 'stopped before the relay was ready');
  };
  try {
    logger.info({ event: 'relay_starting', embedded: config.DATABASE_URL === undefined }, 'relay starting');
    stopIfAsked();
    const { url: databaseUrl, embedded } = await openDatabase(config, logger, options);
    if (embedded !== undefined) undo.push(() => embedded.stop());
    stopIfAsked();
    const durable = options.unsafeAllowNonDurable !== true;
    const db: Db = connectDb(databaseUrl, config.BACKCHANNEL_DB_POOL, durable);
    undo.push(() => db.kysely.destroy());
    await db.pool.query('select 1').catch((err: unknown) => {
      throw unreachable(config, err);
    });
    if (durable) await assertDurable(db);
    if (embedded === undefined) await warnIfSuperuser(db, logger);
    await migrateToLatest(db);
    stopIfAsked();
    const keys = await LiveRelayKeys.open(db, config.BACKCHANNEL_AUTH_KEY_GRACE_MS, config.BACKCHANNEL_KEY_RELOAD_MS);
    undo.push(() => keys.stop());
    const metrics = new Metrics();
    metrics.queueDepthSource = () => countQueuedMessages(db);
    metrics.poolSource = () => ({ total: db.pool.totalCount, idle: db.pool.idleCount, waiting: db.pool.waitingCount });
    const durability = durable ? new DurabilityMonitor(db, logger, metrics.durable, config.BACKCHANNEL_DURABILITY_CHECK_MS) : undefined;
    undo.push(() => durability?.stop());
    const hub = new Hub();
    metrics.subscriptionsSource = () => hub.size;
    const cache = new ChannelCache(db);
    const connections = new ConnectionRegistry();
    const nodeId = toBase64Url(sodium.randombytes_buf(9));
    const messages = new MessageLog(db.pool, (c) => {
      try {
        hub.committed(c);
      } catch (err) {
        // The message is committed and its sender will be acked; subscribers that missed it read it
        // back when the next one shows them the gap.
        logger.error({ event: 'push_failed', err }, 'pushing a committed message failed');
      }
    }, {
      limits: admissionLimits(config),
      observe: (t) => {
        metrics.batchSize.observe({ path: t.path }, t.size);
        metrics.commitPhase.observe({ phase: 'queue' }, t.queueMs / 1000);
        metrics.commitPhase.observe({ phase: 'commit' }, t.commitMs / 1000);
        metrics.commitPhase.observe({ phase: 'handout' }, t.handoutMs / 1000);
      },
    });
    const cursors = new CursorStore(db);

    const ctx: RelayContext = {
      config,
      db,
      cache,
      messages,
      cursors,
      hub,
      keys,
      logger,
      metrics,
      connections,
      prekeyFetches: new PrekeyFetchLimiter(),
      async rosterChanged(channelText) {
        // Synchronously, before any await: a request that follows the answer must see the change.
        cache.invalidate(channelText);
        // Other nodes learn of it by NOTIFY (tagged with our node id, so we skip our own).
        await db.pool.query(`select pg_notify('${ROSTER_NOTIFY_CHANNEL}', $1)`, [`${nodeId} ${channelText}`]).catch(() => undefined);
        await applyRosterChange(db, cache, hub, connections, channelText);
      },
    };

    const feed = new FormalFeed(db, metrics);
    const listener = new NotifyListener(databaseUrl, {
      advanced: (channel, seq) => {
        messages.advanced(channel, seq);
        hub.advanced(channel, seq);
      },
      formalAppended: (channel) => feed.appended(channel),
      rosterChanged: (payload) => {
        const [from, channel] = payload.split(' ');
        if (from !== nodeId && channel !== undefined) void applyRosterChange(db, cache, hub, connections, channel).catch(() => undefined);
      },
      resync: () => {
        cache.clear();
        messages.forgetHeads();
        hub.resync();
      },
    }, logger);
    await listener.start();
    undo.push(() => listener.stop());

    const auth = new Authenticator(() => keys.acceptedAuth);
    const authLimiter = new AuthLimiter();
    // `draining`: /readyz says 503 so load balancers move away; `ready`: new sockets are taken.
    let ready = true;
    let draining = false;
    const isReady = async (): Promise<boolean> => {
      if (!ready || draining) return false;
      try {
        if (durability !== undefined) return await durability.check();
        await db.pool.query('select 1');
        return true;
      } catch {
        return false;
      }
    };

    const server: Server = createServer(httpHandler(ctx, auth, isReady, [...formalRoutes(ctx), ...(options.routes?.(ctx) ?? [])]));
    server.headersTimeout = 10_000;
    server.requestTimeout = 30_000;
    server.keepAliveTimeout = 5_000;

    const wss = new WebSocketServer({
      noServer: true,
      maxPayload: config.BACKCHANNEL_MAX_PAYLOAD,
      perMessageDeflate: false, // 6× the cost for little gain on ciphertext (and a compression oracle)
      handleProtocols: (protocols) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
    });

    const reject = (socket: Duplex, status: number, code: string): void => {
      const body = JSON.stringify({ code });
      socket.end(`HTTP/1.1 ${status} ${status === 401 ? 'Unauthorized' : status === 429 ? 'Too Many Requests' : status === 403 ? 'Forbidden' : status === 503 ? 'Service Unavailable' : 'Bad Request'}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`);
    };

    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => void upgrade(req, socket, head));
    const upgrade = async (req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> => {
      socket.on('error', () => socket.destroy());
      const url = new URL(req.url ?? '/', 'http://relay.invalid');
      if (url.pathname === FORMAL_FEED_PATH) {
        if (!feed.handleUpgrade(req, socket, head, url)) reject(socket, 400, 'not_found');
        return;
      }
      if (url.pathname !== AUTH_PATHS.socket) return reject(socket, 400, 'not_found');
      if (!ready) return reject(socket, 503, 'unavailable');
      const origin = req.headers.origin;
      if (config.BACKCHANNEL_ORIGINS !== undefined && origin !== undefined && !config.BACKCHANNEL_ORIGINS.includes(origin)) {
        return reject(socket, 403, 'origin_forbidden');
      }
      // Authenticate before a socket exists: a bad proof costs the caller a 401 (a flood of them a
      // 429) and nothing else; each nonce is used up in the database, so on one node only.
      const deps = { auth, limiter: authLimiter, useNonce: (nonce: Uint8Array, expiresAt: number) => useNonce(db.pool, nonce, expiresAt, Date.now()) };
      let result: Awaited<ReturnType<typeof authenticateUpgrade>>;
      try {
        result = await authenticateUpgrade(req, deps);
        // A challenge issued by another node under a key rotated in since our last reload (the
        // nonce was not used up: the precheck refused it before the database).
        if (!result.ok && result.reason === 'unknown_key' && (await keys.reloadSoon().catch(() => false))) result = await authenticateUpgrade(req, deps);
      } catch (err) {
        logger.warn({ event: 'auth_unavailable', err }, 'authentication could not use the database');
        return reject(socket, 503, 'unavailable');
      }
      if (socket.destroyed) return;
      if (!ready) return reject(socket, 503, 'unavailable');
      if (!result.ok) {
        const limited = result.reason === 'rate_limited';
        metrics.errors.inc({ code: limited ? 'auth_rate_limited' : 'auth_failed' });
        logger.info({ event: 'auth_refused', reason: result.reason }, 'authentication refused');
        return reject(socket, limited ? 429 : 401, limited ? 'auth_rate_limited' : 'auth_failed');
      }
      const memberKey = result.memberKey;
      wss.handleUpgrade(req, socket, head, (ws) => {
        const memberText = toBase64Url(memberKey);
        const conn = new Connection(ws, socket, memberKey, memberText, ctx);
        const unregister = connections.add(conn);
        metrics.connections.inc();
        ws.on('error', () => ws.terminate());
        ws.on('close', () => {
          conn.disposed();
          unregister();
          metrics.connections.dec();
        });
      });
    };

    const sweeper = new RetentionSweeper(ctx, config.BACKCHANNEL_RETENTION_SWEEP_MS);
    undo.push(() => sweeper.stop());
    const embargo = new EmbargoScheduler(ctx, 500);
    undo.push(() => embargo.stop());
    const heartbeat = setInterval(() => {
      for (const conn of connections.all()) conn.heartbeat();
    }, config.BACKCHANNEL_HEARTBEAT_MS);
    undo.push(() => clearInterval(heartbeat));

    const port = await listen(server, config.BACKCHANNEL_PORT, config.BACKCHANNEL_HOST, 'BACKCHANNEL_PORT');
    undo.push(() => server.close());
    const metricsHttp = config.BACKCHANNEL_METRICS_PORT === undefined ? undefined : metricsServer(ctx);
    const metricsPort = metricsHttp && (await listen(metricsHttp, config.BACKCHANNEL_METRICS_PORT!, config.BACKCHANNEL_METRICS_HOST, 'BACKCHANNEL_METRICS_PORT'));
    undo.push(() => metricsHttp?.close());
    stopIfAsked();
    const bracket = (h: string): string => (h.includes(':') ? `[${h}]` : h);
    const host = bracket(config.BACKCHANNEL_HOST);
    logger.info({ event: 'relay_started', port, metricsPort, embedded: embedded !== undefined }, 'relay listening');

    let closing: Promise<void> | undefined;
    const close = (): Promise<void> => {
      closing ??= (async () => {
        draining = true;
        if (config.BACKCHANNEL_DRAIN_DELAY_MS > 0) {
          logger.info({ event: 'relay_draining', delayMs: config.BACKCHANNEL_DRAIN_DELAY_MS }, '/readyz answers 503; closing after the drain delay');
          await new Promise((r) => setTimeout(r, config.BACKCHANNEL_DRAIN_DELAY_MS));
        }
        ready = false;
        clearInterval(heartbeat);
        durability?.stop();
        keys.stop();
        metricsHttp?.close();
        await sweeper.stop();
        await embargo.stop();
        feed.close();
        server.close();
        for (const conn of connections.all()) {
          conn.send({ type: 'reconnect', reason: 'relay shutting down', retryAfterMs: 1_000 });
          conn.close(CLOSE_CODES.goingAway, 'relay shutting down');
        }
        const bound = new Promise<void>((resolve) => setTimeout(resolve, config.BACKCHANNEL_SHUTDOWN_TIMEOUT_MS).unref());
        await Promise.race([messages.drained(), bound]);
        messages.release();
        await cursors.close().catch(() => undefined);
        await listener.stop();
        for (const conn of connections.all()) conn.terminate();
        server.closeAllConnections();
        await db.kysely.destroy();
        await embedded?.stop();
        logger.info({ event: 'relay_stopped' }, 'relay stopped');
      })();
      return closing;
    };

    return {
      url: `http://${host}:${port}`,
      port,
      metricsUrl: metricsPort === undefined ? undefined : `http://${bracket(config.BACKCHANNEL_METRICS_HOST)}:${metricsPort}/metrics`,
      databaseUrl,
      context: ctx,
      close,
      sweepRetention: (now) => sweeper.sweep(now),
      releaseEmbargoes: (now) => embargo.release(now),
    };
  } catch (err) {
    for (const step of undo.reverse()) await Promise.resolve(step()).catch(() => undefined);
    throw err;
  }
}
