import type { ClientFrame } from '@backchannel/client-sdk/protocol';
import type { Connection } from '../connection.js';
import type { RelayContext } from '../context.js';
import { convene, createInvite, getGroup, redeemInvite } from './governance.js';
import { signGroupChange } from './group-sign.js';
import { ack, send, subscribe } from './messaging.js';
import { fetchPrekeys, publishPrekeys } from './prekeys.js';
import { checkpoint } from '../disclosure/checkpoints.js';
import { consent, getProposal, propose, publishProposal, veto, withdraw } from '../disclosure/handlers.js';

/** Routes a validated frame to its handler; the union's exhaustiveness is checked by `never`. */
export function handleFrame(ctx: RelayContext, conn: Connection, frame: ClientFrame): Promise<void> {
  switch (frame.type) {
    case 'send':
      return send(ctx, conn, frame);
    case 'ack':
      return ack(ctx, conn, frame);
    case 'subscribe':
      return subscribe(ctx, conn, frame);
    case 'prekeys.publish':
      return publishPrekeys(ctx, conn, frame);
    case 'prekeys.fetch':
      return fetchPrekeys(ctx, conn, frame);
    case 'channel.convene':
      return convene(ctx, conn, frame);
    case 'invite.create':
      return createInvite(ctx, conn, frame);
    case 'invite.redeem':
      return redeemInvite(ctx, conn, frame);
    case 'group.get':
      return getGroup(ctx, conn, frame);
    case 'group.sign':
      return signGroupChange(ctx, conn, frame);
    case 'disclosure.propose':
      return propose(ctx, conn, frame);
    case 'disclosure.consent':
      return consent(ctx, conn, frame);
    case 'disclosure.veto':
      return veto(ctx, conn, frame);
    case 'disclosure.withdraw':
      return withdraw(ctx, conn, frame);
    case 'disclosure.publish':
      return publishProposal(ctx, conn, frame);
    case 'disclosure.get':
      return getProposal(ctx, conn, frame);
    case 'formal.checkpoint':
      return checkpoint(ctx, conn, frame);
    case 'ping':
      conn.send({ type: 'ok', rid: frame.rid });
      return Promise.resolve();
    default: {
      const unreachable: never = frame;
      return Promise.reject(new Error(`unhandled frame ${String(unreachable)}`));
    }
  }
}
