import pgListen, { type Subscriber } from 'pg-listen';
import { log } from '../util/log.ts';
import { messageOf } from '../util/errors.ts';

// pg-listen is CommonJS with `exports.default`: from ESM its default import is the module object.
const createSubscriber = pgListen.default;

export interface ListenerOptions {
  connectionString: string;
  channels: string[];
  onNotification: (channel: string, payload: string) => void;
  /** Called after every (re)connect, once LISTEN is in place: run a catch-up claim. */
  onConnected: () => void;
  maxBackoffMs?: number;
}

/** Capped exponential backoff with jitter: 0.25 s, 0.5 s, 1 s, ... up to maxMs. */
export function backoffMs(attempt: number, maxMs: number): number {
  const base = Math.min(maxMs, 250 * 2 ** Math.min(attempt, 16));
  return Math.round(base * (0.5 + Math.random() * 0.5));
}

/**
 * LISTEN on a dedicated connection through pg-listen, configured so that it never gives up
 * (its default retryTimeout of 3 s gives up after a short restart) and still stops on close()
 * (with infinite retries its close() does not end the reconnect loop: our retryInterval
 * throws once closed, which ends that loop, and a connection that completes after close() is
 * ended at once).
 */
export class Listener {
  private subscriber: Subscriber | null = null;
  private closed = false;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly opts: ListenerOptions) {}

  async start(): Promise<void> {
    await this.connect(0);
  }

  private async connect(attempt: number): Promise<void> {
    if (this.closed) return;
    const maxMs = this.opts.maxBackoffMs ?? 10_000;
    const sub = createSubscriber(
      { connectionString: this.opts.connectionString, application_name: 'sqlml listener' },
      {
        parse: (s: string) => s,
        paranoidChecking: 10_000,
        retryLimit: Infinity,
        retryTimeout: Infinity,
        retryInterval: (n: number) => {
          if (this.closed) throw new Error('listener closed');
          return backoffMs(n, maxMs);
        },
      },
    );
    sub.events.on('notification', (n: { channel: string; payload?: unknown }) =>
      this.opts.onNotification(n.channel, String(n.payload ?? '')),
    );
    sub.events.on('reconnect', (n: number) => log.warn('listener reconnecting', { attempt: n }));
    sub.events.on('error', (err: Error) => {
      if (!this.closed) log.error('listener error', { error: messageOf(err) });
    });
    sub.events.on('connected', () => {
      if (this.closed) {
        void sub.close().catch(() => undefined);
        return;
      }
      this.opts.onConnected();
    });
    try {
      await sub.connect();
      await Promise.all(this.opts.channels.map((c) => sub.listenTo(c)));
      this.subscriber = sub;
      // pg-listen emits "connected" before the first LISTEN; catch up again now that we listen.
      this.opts.onConnected();
    } catch (err) {
      await sub.close().catch(() => undefined);
      if (this.closed) return;
      const wait = backoffMs(attempt, maxMs);
      log.warn('listener cannot connect; retrying', { error: messageOf(err), in_ms: wait });
      await new Promise<void>((resolve) => {
        this.timer = setTimeout(resolve, wait);
      });
      return this.connect(attempt + 1);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    const sub = this.subscriber;
    this.subscriber = null;
    if (sub) await Promise.race([sub.close().catch(() => undefined), new Promise((r) => setTimeout(r, 2000))]);
  }
}
