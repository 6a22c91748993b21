import { CLOSE_CODES, type GroupEntry } from '@backchannel/client-sdk/protocol';
import type { ConnectionRegistry } from './connection-registry.js';
import type { Hub } from './delivery/hub.js';
import type { Db } from './db/connect.js';
import { pendingSeats } from './handlers/governance.js';
import type { ChannelCache } from './store/channel-cache.js';

/**
 * Makes a group change take effect on this node: re-read the channel, push the log's head entry
 * and the pending members to every connected member (members whose membership just ended
 * included, so their clients can verify why), then cut the connections of members who left or
 * were removed, and of everyone after dissolution. Clients verify every entry they are pushed.
 */
export async function applyRosterChange(db: Db, cache: ChannelCache, hub: Hub, registry: ConnectionRegistry, channelText: string): Promise<void> {
  cache.invalidate(channelText);
  const state = await cache.get(channelText);
  if (state === undefined || state.group === null) return;
  const head = await db.kysely.selectFrom('group_log').select('entry').where('channel_id', '=', state.id).where('epoch', '=', state.group.epoch).executeTakeFirst();
  const entries = head === undefined ? [] : [head.entry as GroupEntry];
  const frame = { type: 'group' as const, channel: channelText, head: state.group.epoch, entries, pending: pendingSeats(state) };
  const dissolved = state.status === 'dissolved';
  if (dissolved) hub.forget(channelText);
  for (const m of state.members.values()) {
    for (const conn of registry.of(m.keyText)) {
      conn.send(frame);
      if (dissolved) conn.close(CLOSE_CODES.membershipEnded, 'channel dissolved');
      else if (m.status === 'left' || m.status === 'removed') conn.close(CLOSE_CODES.membershipEnded, `membership ${m.status}`);
    }
  }
}
