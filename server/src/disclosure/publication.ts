import type { Transaction } from 'kysely';
import { contentRange, disclosureContentHash, partiesOf, sodium, verifyConsent, verifyOpening, type FormalRecord, type GroupLogState } from '@backchannel/client-sdk';
import { BackchannelError, fromBase64Url, toBase64Url, type DisclosureContent } from '@backchannel/client-sdk/protocol';
import type { Database } from '../db/schema.js';
import type { ChannelState } from '../store/channels.js';
import { groupOf } from '../handlers/access.js';
import type { RelayKeyPair } from '../store/relay-keys.js';
import { appendRecord } from './formal-log.js';
import type { Proposal } from './store.js';

/** The consent statement a proposal's consents sign, in the channel's current verified group state. */
export function statementOf(p: Proposal['row'], group: GroupLogState) {
  return {
    channel: p.channel_id,
    proposalId: p.proposal_id,
    contentHash: p.content_hash,
    kind: p.kind,
    rangeFrom: Number(p.range_from),
    rangeTo: Number(p.range_to),
    releaseAt: Number(p.release_at),
    epoch: group.epoch,
    stateHash: group.stateHash,
  };
}

/** The parties of the channel's group state: the members whose consent the unanimous rule needs. */
export function activeParties(state: ChannelState) {
  const group = groupOf(state);
  return partiesOf(group).map((k) => state.members.get(k)!);
}

/**
 * Checks a publication against everything the relay holds — the content against the consented
 * hash, every consent against the current roster, every excerpt opening against its stored
 * commitment — and appends the formal record. Throws with the precise code otherwise.
 */
export async function publish(trx: Transaction<Database>, key: RelayKeyPair, state: ChannelState, p: Proposal, content: DisclosureContent, now: number): Promise<FormalRecord> {
  const row = p.row;
  if (content.kind !== row.kind) throw new BackchannelError('content_mismatch', 'the content is of another kind than the proposal');
  if (!sodium.memcmp(disclosureContentHash(content), new Uint8Array(row.content_hash))) {
    throw new BackchannelError('content_mismatch', 'the content does not match the hash the parties consented to');
  }
  const range = contentRange(content);
  if (range.rangeFrom !== Number(row.range_from) || range.rangeTo !== Number(row.range_to)) {
    throw new BackchannelError('content_mismatch', 'the excerpt does not cover the proposed range');
  }

  const group = groupOf(state);
  const parties = activeParties(state);
  const statement = statementOf(row, group);
  const consents: FormalRecord['consents'] = [];
  for (const c of p.consents) {
    const signer = state.members.get(toBase64Url(c.signer));
    if (signer === undefined || group.members[signer.keyText]?.role !== 'party') {
      throw new BackchannelError('consent_invalid', 'a consent comes from a member who is no longer a party');
    }
    if (!(await verifyConsent(statement, c.sig, signer.signKey))) throw new BackchannelError('consent_invalid', 'a consent signature does not verify in the current group state (the group changed since: consent again)');
    consents.push({ signKey: toBase64Url(signer.signKey), sig: toBase64Url(c.sig) });
  }
  for (const party of parties) {
    if (!p.consents.some((c) => toBase64Url(c.signer) === party.keyText)) throw new BackchannelError('consent_missing', `party ${party.keyText} has not consented`);
  }

  let items: FormalRecord['items'];
  if (content.kind === 'excerpt') {
    const seqs = content.items.map((i) => i.seq);
    if (new Set(seqs).size !== seqs.length || seqs.some((s, i) => s !== range.rangeFrom + i)) {
      throw new BackchannelError('content_mismatch', 'excerpt items must cover the range once each, in order');
    }
    const receipts = await trx
      .selectFrom('receipts')
      .select(['seq', 'commitment', 'received_at'])
      .where('channel_id', '=', row.channel_id)
      .where('seq', '>=', String(range.rangeFrom))
      .where('seq', '<=', String(range.rangeTo))
      .execute();
    const bySeq = new Map(receipts.map((r) => [Number(r.seq), r]));
    items = content.items.map((item) => {
      const receipt = bySeq.get(item.seq);
      if (receipt === undefined) throw new BackchannelError('opening_invalid', `no message with seq ${item.seq} in this channel`);
      const receivedAt = Number(receipt.received_at);
      if (!('opened' in item)) return { seq: item.seq, receivedAt, withheld: true as const };
      const commitment = new Uint8Array(receipt.commitment);
      if (!verifyOpening(commitment, fromBase64Url(item.opened.frankingKey)!, fromBase64Url(item.opened.plaintext)!)) {
        throw new BackchannelError('opening_invalid', `the opening of seq ${item.seq} does not match its commitment`);
      }
      return { seq: item.seq, receivedAt, opened: { ...item.opened, commitment: toBase64Url(commitment) } };
    });
  }

  return appendRecord(trx, key, {
    v: 2,
    channel: state.idText,
    proposalId: toBase64Url(row.proposal_id),
    kind: row.kind,
    ...(content.kind === 'communique' ? { text: content.text } : { items }),
    contentHash: toBase64Url(row.content_hash),
    rangeFrom: range.rangeFrom,
    rangeTo: range.rangeTo,
    releaseAt: Number(row.release_at),
    publishedAt: Math.max(now, Number(row.release_at)),
    epoch: group.epoch,
    stateHash: group.stateHash,
    parties: parties.map((m) => toBase64Url(m.signKey)).sort(),
    consents,
  });
}
