/**
 * Stable codes of the errors an operator sees when the relay or a CLI command cannot do its job
 * (listed with their meaning in docs/operator.md, "Operator error codes"). Client-facing wire
 * errors are the protocol's `BackchannelError` codes instead.
 */
export const OPERATOR_ERROR_CODES = [
  'config_invalid',
  'data_dir_unusable',
  'data_dir_locked',
  'embedded_start_failed',
  'embedded_leftover_running',
  'address_in_use',
  'database_unreachable',
  'stopped_before_ready',
  'backup_invalid',
  'restore_not_empty',
] as const;

/** One of {@link OPERATOR_ERROR_CODES}. */
export type OperatorErrorCode = (typeof OPERATOR_ERROR_CODES)[number];

/**
 * A failure of the relay's operation (configuration, data folder, embedded database, listen
 * address). `message` is one line naming the cause and, where one is to blame, the variable
 * (`BACKCHANNEL_PORT`, never its value when it may hold a secret).
 */
export class OperatorError extends Error {
  override readonly name: string = 'OperatorError';
  readonly code: OperatorErrorCode;

  constructor(code: OperatorErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }

  /** True when `err` is an {@link OperatorError}, with the given code if one is named. */
  static is(err: unknown, code?: OperatorErrorCode): err is OperatorError {
    return err instanceof OperatorError && (code === undefined || err.code === code);
  }
}
