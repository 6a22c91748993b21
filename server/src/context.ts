import type { Config } from './config.js';
import type { ConnectionRegistry } from './connection-registry.js';
import type { Db } from './db/connect.js';
import type { Hub } from './delivery/hub.js';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';
import type { PrekeyFetchLimiter } from './prekey-fetch-limit.js';
import type { ChannelCache } from './store/channel-cache.js';
import type { CursorStore } from './store/cursors.js';
import type { MessageLog } from './store/message-log.js';
import type { RelayKeys } from './store/relay-keys.js';

/** Everything a frame handler may use. One per relay instance. */
export interface RelayContext {
  readonly config: Config;
  readonly db: Db;
  readonly cache: ChannelCache;
  readonly messages: MessageLog;
  readonly cursors: CursorStore;
  readonly hub: Hub;
  readonly keys: RelayKeys;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly connections: ConnectionRegistry;
  /** Per (channel, member) bound on prekey fetches, so no member drains another's one-time prekeys. */
  readonly prekeyFetches: PrekeyFetchLimiter;
  /** Invalidates a channel's roster here and on every other node, and cuts ended memberships. */
  rosterChanged(channelText: string): Promise<void>;
}
