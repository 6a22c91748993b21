import type { Transaction } from 'kysely';
import { verifyConsent } from '@backchannel/client-sdk';
import { BackchannelError, fromBase64Url, toBase64Url, type ClientFrameOf } from '@backchannel/client-sdk/protocol';
import type { Connection } from '../connection.js';
import type { RelayContext } from '../context.js';
import type { Database } from '../db/schema.js';
import { channelOf, groupOf, lockLiveChannel, memberOf, requireRole } from '../handlers/access.js';
import type { ChannelState } from '../store/channels.js';
import { publish, activeParties, statementOf } from './publication.js';
import { proposalFrame, readProposal, type Proposal } from './store.js';

const OPEN_STAGES = ['proposed', 'consented', 'scheduled'] as const;

function signKeyOf(state: ChannelState): (member: string) => string | undefined {
  return (member) => {
    const m = state.members.get(member);
    return m && toBase64Url(m.signKey);
  };
}

/**
 * Pushes a proposal's new state to the channel's connected active parties and host. Observers
 * and pending members are not told: deliberation (including what was vetoed) is the parties'
 * business; observers read the formal record only.
 */
export function announce(ctx: RelayContext, state: ChannelState, p: Proposal): void {
  const frame = proposalFrame(p, signKeyOf(state));
  for (const m of state.members.values()) {
    if (m.status !== 'active' || m.role === 'observer') continue;
    for (const conn of ctx.connections.of(m.keyText)) conn.send(frame);
  }
}

/** Runs `fn` in a transaction holding the channel's row lock (stage changes never interleave). */
export async function inChannel<T>(ctx: RelayContext, channelText: string, fn: (trx: Transaction<Database>, state: ChannelState) => Promise<T>): Promise<T> {
  return ctx.db.kysely.transaction().execute(async (trx) => {
    const state = await lockLiveChannel(trx, fromBase64Url(channelText)!);
    return fn(trx, state);
  });
}

/** A party or the host proposes a disclosure: the relay learns its id and content hash only. */
export async function propose(ctx: RelayContext, conn: Connection, frame: ClientFrameOf<'disclosure.propose'>): Promise<void> {
  const state = await channelOf(ctx, frame.channel);
  requireRole(memberOf(state, conn.memberText), 'party', 'host');
  if (state.status !== 'open') throw new BackchannelError('channel_closed', 'the channel is not open');
  const excerpt = frame.kind === 'excerpt';
  if (excerpt ? frame.rangeFrom < 1 || frame.rangeTo < frame.rangeFrom || frame.rangeTo - frame.rangeFrom >= 256 : frame.rangeFrom !== 0 || frame.rangeTo !== 0) {
    throw new BackchannelError('bad_frame', 'an excerpt names 1 to 256 sequences; a communiqué none');
  }
  const id = fromBase64Url(frame.proposalId)!;
  const inserted = await ctx.db.kysely
    .insertInto('disclosures')
    .values({
      channel_id: state.id,
      proposal_id: id,
      kind: frame.kind,
      content_hash: fromBase64Url(frame.contentHash)!,
      range_from: frame.rangeFrom,
      range_to: frame.rangeTo,
      release_at: frame.releaseAt,
      proposer_key: conn.memberKey,
      stage: 'proposed',
      content: null,
      record_index: null,
    })
    .onConflict((oc) => oc.doNothing())
    .returning('proposal_id')
    .executeTakeFirst();
  if (inserted === undefined) throw new BackchannelError('disclosure_state', 'a proposal with this id exists');
  const p = (await readProposal(ctx.db.kysely, state.id, id))!;
  conn.send(proposalFrame(p, signKeyOf(state), frame.rid));
  announce(ctx, state, p);
}

/** A party signs its consent; once every active party has, the proposal is consented. */
export async function consent(ctx: RelayContext, conn: Connection, frame: ClientFrameOf<'disclosure.consent'>): Promise<void> {
  const { state, p } = await inChannel(ctx, frame.channel, async (trx, state) => {
    const me = memberOf(state, conn.memberText);
    requireRole(me, 'party');
    const id = fromBase64Url(frame.proposalId)!;
    const p = await readProposal(trx, state.id, id, true);
    if (p === undefined) throw new BackchannelError('disclosure_not_found', 'no such proposal');
    if (p.row.stage !== 'proposed' && p.row.stage !== 'consented') throw new BackchannelError('disclosure_state', `the proposal is ${p.row.stage}`);
    const sig = fromBase64Url(frame.sig)!;
    if (!(await verifyConsent(statementOf(p.row, groupOf(state)), sig, me.signKey))) throw new BackchannelError('consent_invalid', 'the consent does not verify for this proposal');
    await trx
      .insertInto('disclosure_consents')
      .values({ channel_id: state.id, proposal_id: id, signer_key: me.key, sig })
      .onConflict((oc) => oc.columns(['channel_id', 'proposal_id', 'signer_key']).doUpdateSet({ sig }))
      .execute();
    const after = (await readProposal(trx, state.id, id))!;
    const all = activeParties(state).every((m) => after.consents.some((c) => toBase64Url(c.signer) === m.keyText));
    if (all && after.row.stage === 'proposed') {
      await trx.updateTable('disclosures').set({ stage: 'consented' }).where('channel_id', '=', state.id).where('proposal_id', '=', id).execute();
    }
    return { state, p: (await readProposal(trx, state.id, id))! };
  });
  conn.send(proposalFrame(p, signKeyOf(state), frame.rid));
  announce(ctx, state, p);
}

async function stop(ctx: RelayContext, conn: Connection, frame: ClientFrameOf<'disclosure.veto' | 'disclosure.withdraw'>, to: 'vetoed' | 'withdrawn'): Promise<void> {
  const { state, p } = await inChannel(ctx, frame.channel, async (trx, state) => {
    const me = memberOf(state, conn.memberText);
    const id = fromBase64Url(frame.proposalId)!;
    const p = await readProposal(trx, state.id, id, true);
    if (p === undefined) throw new BackchannelError('disclosure_not_found', 'no such proposal');
    if (to === 'vetoed') requireRole(me, 'party');
    else if (toBase64Url(p.row.proposer_key) !== me.keyText) throw new BackchannelError('forbidden', 'only the proposer withdraws');
    if (!(OPEN_STAGES as readonly string[]).includes(p.row.stage)) throw new BackchannelError('disclosure_state', `the proposal is ${p.row.stage}`);
    // A veto during an embargo also drops the held content: it is never published.
    await trx.updateTable('disclosures').set({ stage: to, content: null }).where('channel_id', '=', state.id).where('proposal_id', '=', id).execute();
    return { state, p: (await readProposal(trx, state.id, id))! };
  });
  conn.send(proposalFrame(p, signKeyOf(state), frame.rid));
  announce(ctx, state, p);
}

/** Any party vetoes, at any time before publication. */
export function veto(ctx: RelayContext, conn: Connection, frame: ClientFrameOf<'disclosure.veto'>): Promise<void> {
  return stop(ctx, conn, frame, 'vetoed');
}

/** The proposer withdraws, at any time before publication. */
export function withdraw(ctx: RelayContext, conn: Connection, frame: ClientFrameOf<'disclosure.withdraw'>): Promise<void> {
  return stop(ctx, conn, frame, 'withdrawn');
}

/**
 * The proposer or the host submits the content of a consented proposal. Checked at once; published
 * now, or held (`scheduled`) until its release time, when it is checked again.
 */
export async function publishProposal(ctx: RelayContext, conn: Connection, frame: ClientFrameOf<'disclosure.publish'>): Promise<void> {
  const now = Date.now();
  const { state, p } = await inChannel(ctx, frame.channel, async (trx, state) => {
    const me = memberOf(state, conn.memberText);
    const id = fromBase64Url(frame.proposalId)!;
    const p = await readProposal(trx, state.id, id, true);
    if (p === undefined) throw new BackchannelError('disclosure_not_found', 'no such proposal');
    if (me.role !== 'host' && toBase64Url(p.row.proposer_key) !== me.keyText) throw new BackchannelError('wrong_role', 'only the proposer or the host publishes');
    if (p.row.stage !== 'consented') throw new BackchannelError(p.row.stage === 'proposed' ? 'consent_missing' : 'disclosure_state', `the proposal is ${p.row.stage}`);
    const record = await publish(trx, ctx.keys.record, state, p, frame.content, now);
    if (Number(p.row.release_at) > now) {
      // Checked, but embargoed: keep the content, drop the record this transaction made.
      throw new Embargoed();
    }
    await trx.updateTable('disclosures').set({ stage: 'published', record_index: record.index, content: null }).where('channel_id', '=', state.id).where('proposal_id', '=', id).execute();
    return { state, p: (await readProposal(trx, state.id, id))! };
  }).catch(async (err: unknown) => {
    if (!(err instanceof Embargoed)) throw err;
    return schedule(ctx, frame);
  });
  conn.send(proposalFrame(p, signKeyOf(state), frame.rid));
  announce(ctx, state, p);
}

class Embargoed extends Error {}

async function schedule(ctx: RelayContext, frame: ClientFrameOf<'disclosure.publish'>): Promise<{ state: ChannelState; p: Proposal }> {
  return inChannel(ctx, frame.channel, async (trx, state) => {
    const id = fromBase64Url(frame.proposalId)!;
    await trx
      .updateTable('disclosures')
      .set({ stage: 'scheduled', content: JSON.stringify(frame.content) })
      .where('channel_id', '=', state.id)
      .where('proposal_id', '=', id)
      .where('stage', '=', 'consented')
      .execute();
    return { state, p: (await readProposal(trx, state.id, id))! };
  });
}

/** Reads a proposal's state: active parties and the host (observers read the formal record only). */
export async function getProposal(ctx: RelayContext, conn: Connection, frame: ClientFrameOf<'disclosure.get'>): Promise<void> {
  const state = await channelOf(ctx, frame.channel);
  requireRole(memberOf(state, conn.memberText), 'party', 'host');
  const p = await readProposal(ctx.db.kysely, state.id, fromBase64Url(frame.proposalId)!);
  if (p === undefined) throw new BackchannelError('disclosure_not_found', 'no such proposal');
  conn.send(proposalFrame(p, signKeyOf(state), frame.rid));
}
