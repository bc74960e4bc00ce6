import type { WorkerMessage } from '../protocol/worker-messages.js';

/**
 * What one worker process may say, and when: the order of the conversation, on top of the shape
 * of each message (worker-message-schema.ts). A worker says `ready` once, first, with its own pid;
 * `fatal` only before that; it answers only heartbeats that were sent to it,
 * each once, in the order they were sent (the channel keeps order and the worker answers each as
 * it reads it). A message that breaks this is refused with the reason, and the supervisor
 * replaces the worker: it is broken or compromised either way.
 *
 * Numbers are counted, not remembered one by one, so a worker cannot make this grow.
 */
export class WorkerConversation {
  private readonly pid: number | null;
  private ready = false;
  private heartbeatsSent = 0;
  private heartbeatsAnswered = 0;

  /** `pid`: the process id the worker must report (null if the spawn gave none). */
  constructor(pid: number | null) {
    this.pid = pid;
  }

  get isReady(): boolean {
    return this.ready;
  }

  /** The next heartbeat's sequence number, counted as asked. */
  nextHeartbeat(): number {
    return ++this.heartbeatsSent;
  }

  /** Undefined when the message is in order (and takes it into account), else why it is not. */
  accept(message: WorkerMessage): string | undefined {
    if (message.type === 'ready') {
      if (this.ready) return 'said ready a second time';
      if (this.pid !== null && message.pid !== this.pid)
        return `said ready with pid ${message.pid}, but its pid is ${this.pid}`;
      this.ready = true;
      return undefined;
    }
    if (message.type === 'fatal') return this.ready ? 'sent fatal after it said ready' : undefined;
    if (!this.ready) return `sent ${message.type} before it said ready`;
    switch (message.type) {
      case 'heartbeat':
        if (message.seq <= this.heartbeatsAnswered || message.seq > this.heartbeatsSent) {
          return `answered heartbeat ${message.seq}, but the heartbeats waiting for an answer are ${range(this.heartbeatsAnswered, this.heartbeatsSent)}`;
        }
        this.heartbeatsAnswered = message.seq;
        return undefined;
      case 'health': // on the worker's own timer
      case 'error':
        return undefined;
    }
  }
}

function range(answered: number, sent: number): string {
  if (sent === answered) return 'none';
  return sent === answered + 1 ? String(sent) : `${answered + 1}-${sent}`;
}
