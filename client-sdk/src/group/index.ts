export {
  GENESIS_PREV,
  applyEntry,
  canonicalJson,
  partiesOf,
  proposalHash,
  replayLog,
  signerRule,
  statementOf,
  verifySeat,
  type GroupLogState,
  type GroupMember,
  type SignerRule,
} from './group-log.js';
