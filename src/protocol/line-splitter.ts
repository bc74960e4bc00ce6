/**
 * Splits a byte stream into newline-terminated lines, refusing any line longer than a limit so a
 * peer cannot make the reader buffer without bound. Each chunk is scanned once: a line that
 * arrives a byte at a time costs time in proportion to its length, not to its square.
 */
export class LineSplitter {
  private readonly maxBytes: number;
  /** The line begun and not yet ended, as the pieces it arrived in. */
  private parts: string[] = [];
  private partBytes = 0;
  private overflowed = false;

  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
  }

  /** Bytes of the line begun and not yet ended (0 between lines). */
  get partialBytes(): number {
    return this.partBytes;
  }

  /** Returns the complete lines in `chunk` (without their newlines), or 'overflow'. */
  push(chunk: string): string[] | 'overflow' {
    const { lines, overflow } = this.take(chunk);
    return overflow ? 'overflow' : lines;
  }

  /**
   * The complete lines in `chunk` (without their newlines; blank ones skipped) up to a line over
   * the limit, if there is one: then `overflow` is true and the splitter takes nothing more, since
   * the rest of the stream can no longer be framed.
   */
  take(chunk: string): { lines: string[]; overflow: boolean } {
    const lines: string[] = [];
    if (this.overflowed) return { lines, overflow: true };
    let start = 0;
    for (let end = chunk.indexOf('\n'); end !== -1; end = chunk.indexOf('\n', start)) {
      const piece = chunk.slice(start, end);
      if (this.bytesWith(piece) > this.maxBytes) return this.overflow(lines);
      const line = this.parts.length === 0 ? piece : this.parts.join('') + piece;
      this.parts = [];
      this.partBytes = 0;
      if (line.trim() !== '') lines.push(line);
      start = end + 1;
    }
    if (start < chunk.length) {
      const piece = start === 0 ? chunk : chunk.slice(start);
      const bytes = this.bytesWith(piece);
      if (bytes > this.maxBytes) return this.overflow(lines);
      this.parts.push(piece);
      this.partBytes = bytes;
    }
    return { lines, overflow: false };
  }

  /**
   * The line begun and not yet ended, which the stream's end completes (a last request sent
   * without its newline, as `printf` sends it); undefined if there is none or it is blank.
   */
  flush(): string | undefined {
    const rest = this.parts.join('');
    this.parts = [];
    this.partBytes = 0;
    return this.overflowed || rest.trim() === '' ? undefined : rest;
  }

  /** The partial line's bytes with `piece` added (past the limit, only as far as to know it is). */
  private bytesWith(piece: string): number {
    // Each UTF-16 unit is at least one byte of UTF-8: no need to count a line that long.
    if (this.partBytes + piece.length > this.maxBytes) return this.partBytes + piece.length;
    return this.partBytes + Buffer.byteLength(piece);
  }

  private overflow(lines: string[]): { lines: string[]; overflow: true } {
    this.overflowed = true;
    this.parts = [];
    this.partBytes = 0;
    return { lines, overflow: true };
  }
}
