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
    if (this.pending.length > this.maxBytes || lines.some((l) => l.length > this.maxBytes)) return 'overflow';
    return lines.filter((l) => l.trim() !== '');
  }
}
