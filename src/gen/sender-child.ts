// One sender of an `mcrgen send --processes N` (a child process, over the IPC channel fork made)
// or `--threads N` (a worker thread, over its parent port). See sender-group.ts for the
// conversation: prepare → ready, go → report (or error at any point), stop at any time.

import { parentPort } from 'node:worker_threads';

import {
  createSender,
  describeFailure,
  type FromSender,
  type ProbeSender,
  type ToSender,
} from './sender-group.js';

interface Channel {
  post(message: FromSender): void;
  onMessage(handler: (message: ToSender) => void): void;
  /** Posts the last message and lets this sender end once it is out. */
  postLast(message: FromSender): void;
}

function channel(): Channel {
  const port = parentPort;
  if (port !== null) {
    return {
      post: (m) => port.postMessage(m),
      onMessage: (h) => port.on('message', h),
      // Posted messages are delivered after the thread ends; unref lets it end.
      postLast: (m) => {
        port.postMessage(m);
        port.unref();
      },
    };
  }
  if (process.send === undefined) throw new Error('sender-child runs only as a child of mcrgen send');
  // Like mcrgen itself (usually root): a SIGUSR1 listener keeps Node's inspector closed.
  process.on('SIGUSR1', () => undefined);
  return {
    post: (m) => process.send!(m),
    onMessage: (h) => process.on('message', (m) => h(m as ToSender)),
    // Disconnecting with the write still queued could cancel it: only once it is out.
    postLast: (m) => process.send!(m, () => process.disconnect()),
  };
}

const parent = channel();
let sender: ProbeSender | undefined;
let started = false;

function go(): void {
  if (sender === undefined || started) return;
  started = true;
  sender.run().then(
    (report) => finish({ type: 'report', report }),
    (err: unknown) => finish({ type: 'error', error: describeFailure(err) }),
  );
}

function finish(message: FromSender): void {
  parent.postLast(message);
}

function stop(): void {
  // A stop before the go still ends with a (zero) report, so the parent always gets one.
  go();
  sender?.stop();
}

parent.onMessage((m) => {
  switch (m.type) {
    case 'prepare':
      try {
        sender = createSender(m.options);
        sender.prepare();
        parent.post({ type: 'ready' });
      } catch (err) {
        finish({ type: 'error', error: describeFailure(err) });
      }
      return;
    case 'go':
      return go();
    case 'stop':
      return stop();
  }
});

if (parentPort === null) {
  // Ctrl-C reaches the whole process group: each child ends its run and reports, as the parent
  // would. A parent that went away without a stop (killed) leaves no one to report to.
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  process.on('disconnect', () => {
    sender?.stop();
    if (!started) process.exit(0);
  });
}
