/**
 * Splits a byte stream into newline-terminated lines, refusing any line longer than a limit so a
 * peer cannot make the reader buffer without bound.
 */
export class LineSplitter {
  private pending = '';
  private readonly maxBytes: number;

  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
  }

  /** Returns the complete lines in `chunk` (without their newlines), or 'overflow'. */
  push(chunk: string): string[] | 'overflow' {
    this.pending += chunk;
    const lines = this.pending.split('\n');
    this.pending = lines.pop() ?? '';
    const tooLong = (s: string): boolean =>
      s.length > this.maxBytes / 4 && Buffer.byteLength(s) > this.maxBytes;
    if (tooLong(this.pending) || lines.some(tooLong)) return 'overflow';
    return lines.filter((l) => l.trim() !== '');
  }
}
