import { signCheckpoint } from '../crypto/signatures.js';
import { verifyLog } from '../formal/verify.js';
import { toBase64Url } from '../protocol/index.js';
import type { RelayConnection } from '../transport/relay-connection.js';
import type { ChannelRecord } from './channel-record.js';

/** What co-signing the formal log came to: the head index co-signed, or why not. */
export type Cosigned = { readonly index: number } | { readonly refused: string } | { readonly empty: true };

/**
 * Verifies the channel's formal log against this member's own fingerprint and co-signs its head
 * (a checkpoint), unless the log fails verification or publishes a proposal this member vetoed.
 */
export async function cosignHead(conn: RelayConnection, record: ChannelRecord, signal?: AbortSignal): Promise<Cosigned> {
  const log = await conn.getJson(`/v1/formal/${record.channel}`, signal);
  const result = await verifyLog(log, { fingerprint: record.log.fingerprint });
  if (!result.ok) return { refused: `the formal log does not verify (record ${result.index}: ${result.reason}); not co-signed` };
  const vetoed = new Set(record.vetoed ?? []);
  const disputed = result.records.find((r) => vetoed.has(r.proposalId));
  if (disputed !== undefined) return { refused: `the formal log publishes proposal ${disputed.proposalId}, which this party vetoed; not co-signed` };
  if (result.head === undefined) return { empty: true };
  const { epoch, stateHash } = record.log;
  const statement = { channel: record.channel, index: result.head.index, hash: result.head.hash, epoch, stateHash };
  const sig = await signCheckpoint(statement, record.group.self.signSecret);
  await conn.request({ type: 'formal.checkpoint', channel: record.channel, index: statement.index, hash: statement.hash, epoch, stateHash, sig: toBase64Url(sig) }, signal ? { signal } : {});
  return { index: result.head.index };
}
