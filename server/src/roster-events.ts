import { CLOSE_CODES } from '@backchannel/client-sdk/protocol';
import type { ConnectionRegistry } from './connection-registry.js';
import type { Hub } from './delivery/hub.js';
import type { ChannelCache } from './store/channel-cache.js';
import { rosterMembers } from './store/channels.js';

/**
 * Makes a roster change take effect on this node: re-read the roster, push it to every
 * connected member, and cut the connections of members who left or were removed (and of
 * everyone, after dissolve). Clients still verify every roster they are pushed.
 */
export async function applyRosterChange(cache: ChannelCache, hub: Hub, registry: ConnectionRegistry, channelText: string): Promise<void> {
  cache.invalidate(channelText);
  const state = await cache.get(channelText);
  if (state === undefined) return;
  if (state.status === 'dissolved') {
    hub.forget(channelText);
    for (const m of state.members.values()) {
      for (const conn of registry.of(m.keyText)) {
        conn.send({ type: 'channel.dissolved', channel: channelText });
        conn.close(CLOSE_CODES.membershipEnded, 'channel dissolved');
      }
    }
    return;
  }
  const members = rosterMembers(state);
  for (const m of state.members.values()) {
    for (const conn of registry.of(m.keyText)) {
      conn.send({ type: 'roster', channel: channelText, version: state.version, status: state.status, charter: state.charter, members });
      if (m.status === 'left' || m.status === 'removed') conn.close(CLOSE_CODES.membershipEnded, `membership ${m.status}`);
    }
  }
}
