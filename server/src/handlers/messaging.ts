import { BackchannelError, fromBase64Url, type ClientFrameOf } from '@backchannel/client-sdk/protocol';
import { toBase64Url } from '@backchannel/client-sdk/protocol';
import { admissionLimits, refusesSend } from '../admission.js';
import type { Connection } from '../connection.js';
import type { RelayContext } from '../context.js';
import { Subscription } from '../delivery/subscription.js';
import { deliverExpiryNotices } from '../retention.js';
import { channelOf, memberOf, requireRole } from './access.js';

/**
 * A send is acked only after its commit. Recipients must be active parties other than the
 * sender: nobody encrypts to a host or an observer, and the relay refuses to carry it.
 */
export async function send(ctx: RelayContext, conn: Connection, frame: ClientFrameOf<'send'>): Promise<void> {
  const started = performance.now();
  // Shed load before it queues (see admission.ts); a send of another shape than the SDK's was not
  // refused before parsing, so it is here. The client retries after a backoff.
  if (refusesSend(ctx.messages, admissionLimits(ctx.config))) throw new BackchannelError('overloaded', 'the relay is at capacity; retry');
  const state = await channelOf(ctx, frame.channel);
  requireRole(memberOf(state, conn.memberText), 'party');
  if (state.status !== 'open') throw new BackchannelError('channel_closed', 'the channel is not open');
  for (const recipient of Object.keys(frame.headers)) {
    const m = state.members.get(recipient);
    if (m === undefined || m.status !== 'active' || m.role !== 'party' || recipient === conn.memberText) {
      throw new BackchannelError('recipient_not_member', 'every recipient must be another active party');
    }
  }
  const committed = await ctx.messages.submit({
    channel: state.id,
    channelText: state.idText,
    sender: conn.memberKey,
    senderText: conn.memberText,
    clientMsgId: frame.clientMsgId,
    headers: frame.headers,
    body: frame.body,
    commitment: fromBase64Url(frame.commitment)!,
  });
  conn.send({
    type: 'sent',
    rid: frame.rid,
    channel: frame.channel,
    clientMsgId: frame.clientMsgId,
    seq: committed.seq,
    receivedAt: committed.receivedAt,
    chain: toBase64Url(committed.chain),
    duplicate: committed.duplicate,
  });
  ctx.metrics.ackLatency.observe((performance.now() - started) / 1000);
}

/** Starts (or restarts) delivery of a channel from `after`. */
export async function subscribe(ctx: RelayContext, conn: Connection, frame: ClientFrameOf<'subscribe'>): Promise<void> {
  const state = await channelOf(ctx, frame.channel);
  requireRole(memberOf(state, conn.memberText), 'party');
  const previous = conn.subscriptions.get(frame.channel);
  if (previous !== undefined) {
    previous.close();
    ctx.hub.remove(previous);
  }
  const sub = new Subscription(ctx.db, ctx.hub, conn, frame.channel, frame.after, ctx.messages);
  conn.subscriptions.set(frame.channel, sub);
  ctx.hub.add(sub);
  conn.send({ type: 'subscribed', rid: frame.rid, channel: frame.channel, head: ctx.hub.head(frame.channel) });
  sub.start();
  await deliverExpiryNotices(ctx, frame.channel, conn.memberText);
}

/** Advances the member's delivery cursor; releases the next backlog page. */
export async function ack(ctx: RelayContext, conn: Connection, frame: ClientFrameOf<'ack'>): Promise<void> {
  const sub = conn.subscriptions.get(frame.channel);
  if (sub === undefined) throw new BackchannelError('not_member', 'no subscription to this channel');
  sub.acked(frame.seq);
  await ctx.cursors.advance(frame.channel, conn.memberText, frame.seq);
}
