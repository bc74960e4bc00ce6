/** An XDP path error that is not a failed bpf(2) call (those are BpfError). */
export type XdpErrorCode = 'E_XDP_FULL' | 'E_XDP_MODE';

export class XdpError extends Error {
  readonly code: XdpErrorCode;

  constructor(code: XdpErrorCode, message: string) {
    super(message);
    this.name = 'XdpError';
    this.code = code;
  }
}
