import { toBase64Url, type RelayFrameOf } from '@backchannel/client-sdk/protocol';
import type { Q } from '../store/channels.js';
import type { Database } from '../db/schema.js';
import type { Selectable } from 'kysely';

/** A proposal row as read. */
export type DisclosureRow = Selectable<Database['disclosures']>;

/** A proposal and its consents. */
export interface Proposal {
  readonly row: DisclosureRow;
  readonly consents: { signer: Uint8Array; sig: Uint8Array }[];
}

/** Reads a proposal (locking it when inside a transaction that asks to). */
export async function readProposal(q: Q, channel: Uint8Array, proposalId: Uint8Array, lock = false): Promise<Proposal | undefined> {
  let query = q.selectFrom('disclosures').selectAll().where('channel_id', '=', channel).where('proposal_id', '=', proposalId);
  if (lock) query = query.forUpdate();
  const row = await query.executeTakeFirst();
  if (row === undefined) return undefined;
  const consents = await q
    .selectFrom('disclosure_consents')
    .select(['signer_key', 'sig'])
    .where('channel_id', '=', channel)
    .where('proposal_id', '=', proposalId)
    .execute();
  return { row, consents: consents.map((c) => ({ signer: new Uint8Array(c.signer_key), sig: new Uint8Array(c.sig) })) };
}

/** The wire view of a proposal; sign keys come from the roster. */
export function proposalFrame(p: Proposal, signKeyOf: (member: string) => string | undefined, rid?: number): RelayFrameOf<'disclosure'> {
  const r = p.row;
  return {
    type: 'disclosure',
    ...(rid === undefined ? {} : { rid }),
    channel: toBase64Url(r.channel_id),
    proposalId: toBase64Url(r.proposal_id),
    kind: r.kind,
    contentHash: toBase64Url(r.content_hash),
    rangeFrom: Number(r.range_from),
    rangeTo: Number(r.range_to),
    releaseAt: Number(r.release_at),
    stage: r.stage,
    proposer: toBase64Url(r.proposer_key),
    consents: p.consents.flatMap((c) => {
      const by = toBase64Url(c.signer);
      const signKey = signKeyOf(by);
      return signKey === undefined ? [] : [{ by, signKey, sig: toBase64Url(c.sig) }];
    }),
    recordIndex: r.record_index,
  };
}
