/**
 * `mcrctl --help | head` closes the pipe before all the text is written: the reader's choice,
 * not a fault worth a stack trace. Node ignores SIGPIPE, so the write fails with EPIPE instead;
 * the program then ends at once with status 1, as a coreutils tool does when SIGPIPE is ignored.
 */
export function endQuietlyWhenReaderLeaves(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') process.exit(1);
      throw err;
    });
  }
}
