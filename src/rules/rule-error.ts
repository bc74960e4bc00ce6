/**
 * Stable error codes for rule problems. The code is for programs (mcrctl --json, tests); the
 * message is for a person and always names the field and the value that was wrong.
 */
export type RuleErrorCode =
  | 'E_INVALID_ADDRESS'
  | 'E_INVALID_PORT'
  | 'E_NOT_MULTICAST'
  | 'E_NOT_LOCAL_ADDRESS'
  | 'E_INVALID_INTERFACE'
  | 'E_INVALID_NAME'
  | 'E_INVALID_TTL'
  | 'E_INVALID_VLAN'
  | 'E_INVALID_DSCP'
  | 'E_INVALID_SOURCE'
  | 'E_STATE_WRITE'
  | 'E_NO_OUTPUTS'
  | 'E_TOO_MANY_OUTPUTS'
  | 'E_INVALID_OUTPUT'
  | 'E_DUPLICATE_OUTPUT'
  | 'E_RAW_UNSUPPORTED'
  | 'E_XDP_UNSUPPORTED'
  | 'E_LOOP'
  | 'E_RULE_EXISTS'
  | 'E_NAME_TAKEN'
  | 'E_RULE_NOT_FOUND';

export class RuleError extends Error {
  readonly code: RuleErrorCode;
  /** The field at fault, in the operator's terms (e.g. "input-group", "outputs[1].port"). */
  readonly field: string;
  readonly value: unknown;

  constructor(code: RuleErrorCode, field: string, value: unknown, message: string) {
    super(message);
    this.name = 'RuleError';
    this.code = code;
    this.field = field;
    this.value = value;
  }
}
