/** Connection states of {@link RelayConnection}. */
export type ConnectionState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';

/** Why the state changed: a stable reason code. */
export type StateReason =
  | 'connect'
  | 'authenticated'
  | 'socket_closed'
  | 'auth_failed'
  | 'relay_reconnect'
  | 'membership_ended'
  | 'heartbeat_timeout'
  | 'network_error'
  | 'closed_by_client'
  | 'aborted';

/** A state change, as emitted to listeners. */
export interface StateChange {
  readonly from: ConnectionState;
  readonly to: ConnectionState;
  readonly reason: StateReason;
}
