import { BackchannelError, DisclosureContent, toBase64Url } from '@backchannel/client-sdk/protocol';
import type { RelayContext } from '../context.js';
import { announce, inChannel } from './handlers.js';
import { publish } from './publication.js';
import { readProposal } from './store.js';

/**
 * Publishes embargoed disclosures when their release time comes, unless vetoed first. State
 * lives in the database (stage `scheduled` with the checked content), so a restart loses
 * nothing, and the stage change under the channel lock means one node publishes each once.
 * If the publication no longer checks out at release (a consenting party left meanwhile), the
 * proposal goes back to `proposed`: the current parties must consent again.
 */
export class EmbargoScheduler {
  readonly #ctx: RelayContext;
  readonly #timer: NodeJS.Timeout;
  #running: Promise<number> | undefined;

  constructor(ctx: RelayContext, intervalMs: number) {
    this.#ctx = ctx;
    this.#timer = setInterval(() => void this.release().catch(() => undefined), intervalMs);
    this.#timer.unref();
  }

  /** Publishes every scheduled disclosure whose time has come; resolves with how many. */
  release(now: number = Date.now()): Promise<number> {
    this.#running ??= this.#release(now).finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  /** Stops the timer, waiting for a running release. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#running?.catch(() => undefined);
  }

  async #release(now: number): Promise<number> {
    const due = await this.#ctx.db.kysely
      .selectFrom('disclosures')
      .select(['channel_id', 'proposal_id'])
      .where('stage', '=', 'scheduled')
      .where('release_at', '<=', String(now))
      .execute();
    let published = 0;
    for (const d of due) {
      const channelText = toBase64Url(d.channel_id);
      const outcome = await inChannel(this.#ctx, channelText, async (trx, state) => {
        const p = await readProposal(trx, state.id, d.proposal_id, true);
        if (p === undefined || p.row.stage !== 'scheduled') return undefined; // vetoed, or another node was first
        const content = DisclosureContent.parse(p.row.content);
        try {
          const r = await publish(trx, this.#ctx.keys.record, state, p, content, now);
          await trx.updateTable('disclosures').set({ stage: 'published', record_index: r.index, content: null }).where('channel_id', '=', state.id).where('proposal_id', '=', d.proposal_id).execute();
          published++;
        } catch (err) {
          if (!BackchannelError.is(err)) throw err;
          this.#ctx.logger.warn({ event: 'embargo_release_refused', code: err.code }, 'embargoed disclosure no longer checks out; back to proposed');
          await trx.deleteFrom('disclosure_consents').where('channel_id', '=', state.id).where('proposal_id', '=', d.proposal_id).execute();
          await trx.updateTable('disclosures').set({ stage: 'proposed', content: null }).where('channel_id', '=', state.id).where('proposal_id', '=', d.proposal_id).execute();
        }
        return { state, p: (await readProposal(trx, state.id, d.proposal_id))! };
      }).catch(() => undefined);
      if (outcome !== undefined) announce(this.#ctx, outcome.state, outcome.p);
    }
    return published;
  }
}
