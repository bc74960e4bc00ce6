// One sender of an `mcrgen send --threads N`, in a worker thread, talking to the main thread over
// its parent port. See sender-group.ts for the conversation: prepare → ready, go → report (or
// error at any point), stop at any time.

import { parentPort } from 'node:worker_threads';

import {
  createSender,
  describeFailure,
  type FromSender,
  type ProbeSender,
  type ToSender,
} from './sender-group.js';

if (parentPort === null) throw new Error('sender-thread runs only as a worker thread of mcrgen send');
const port = parentPort;
let sender: ProbeSender | undefined;
let started = false;

function post(message: FromSender): void {
  port.postMessage(message);
}

/** The last message: what a thread posted is delivered after it ends, and unref lets it end. */
function finish(message: FromSender): void {
  post(message);
  port.unref();
}

function go(): void {
  if (sender === undefined || started) return;
  started = true;
  sender.run().then(
    (report) => finish({ type: 'report', report }),
    (err: unknown) => finish({ type: 'error', error: describeFailure(err) }),
  );
}

port.on('message', (m: ToSender) => {
  switch (m.type) {
    case 'prepare':
      try {
        sender = createSender(m.options);
        sender.prepare();
        post({ type: 'ready' });
      } catch (err) {
        finish({ type: 'error', error: describeFailure(err) });
      }
      return;
    case 'go':
      return go();
    case 'stop':
      // A stop before the go still ends with a (zero) report, so the main thread always gets one.
      go();
      return sender?.stop();
  }
});
