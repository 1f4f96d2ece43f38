/**
 * The broker connection: amqp-connection-manager does the reconnecting (several cluster nodes,
 * round-robin) and re-creates channels and consumers after a broker restart; this wrapper adds
 * confirmed publishing that fails fast (503) instead of buffering while the broker is away or has
 * blocked us (memory/disk alarm).
 */
import amqp, { type AmqpConnectionManager, type ChannelWrapper } from 'amqp-connection-manager';
import type { ConfirmChannel, ChannelModel as Connection, Options } from 'amqplib';
import type { Writable } from 'node:stream';
import type { Logger } from './logger.js';
import { maskUrl } from './config.js';

export class BrokerUnavailableError extends Error {
  constructor(
    message: string,
    readonly reason: 'disconnected' | 'blocked' | 'timeout' | 'nack' | 'closed',
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'BrokerUnavailableError';
  }
}

export interface PublishArgs {
  exchange: string;
  routingKey: string;
  body: Buffer;
  messageId: string;
  correlationId?: string;
  headers?: Record<string, unknown>;
  priority?: number;
  timestamp?: number;
  /**
   * Publish on the urgent lane's own confirm channel: confirms come back in order per channel, so
   * on the shared one an urgent message would wait for every confirm of the normal traffic ahead
   * of it (quorum queues confirm once replicated and fsynced).
   */
  urgent?: boolean;
}

export interface BrokerOptions {
  urls: string;
  logger: Logger;
  publishTimeoutMs: number;
  heartbeatS?: number;
  name?: string;
  /**
   * Give the urgent lanes a connection of their own (`<name>:urgent`): the services do; a CLI or a
   * test that never touches them need not open it.
   */
  urgentConnection?: boolean;
}

/**
 * One socket write per pass of amqplib's frame multiplexer instead of one per frame. amqplib's
 * `Mux` gathers the frames every channel queued during a tick and writes them one `socket.write`
 * at a time: on loopback each is its own syscall and TCP segment, and the broker's reader wakes
 * for each. With many messages in flight (every publish, confirm-tracked ack and consume on 17+
 * channels) that was the largest item of the ingress's and dispatcher's profiles after GC. Corking
 * the socket for the pass makes it one `writev`. Back-pressure is unchanged: `write` still returns
 * false past the socket's high-water mark, and the mux waits for `drain` as before.
 * Reaches into amqplib's internals (`connection.muxer._readIncoming`, checked at run time; without
 * them nothing changes): amqplib has no option for it.
 */
export function batchFrameWrites(model: Connection): boolean {
  const conn = (model as unknown as { connection?: { muxer?: Record<string, unknown>; stream?: Writable } }).connection;
  const mux = conn?.muxer;
  const out = conn?.stream;
  const pass = mux?._readIncoming;
  if (!mux || !out || typeof pass !== 'function' || typeof out.cork !== 'function' || mux.batched) return false;
  mux._readIncoming = function batchedPass(this: unknown) {
    out.cork();
    try {
      pass.call(mux);
    } finally {
      out.uncork();
    }
  };
  mux.batched = true;
  return true;
}

export class Broker {
  readonly manager: AmqpConnectionManager;
  /**
   * The urgent lanes' own connection (BrokerOptions.urgentConnection), else `manager`. On one
   * connection an urgent delivery or publish is a frame in the same TCP stream as the ordered
   * lanes' — behind every delivery the broker already wrote to it (up to a full prefetch per shard)
   * and every publish and ack the service already wrote — and in the same connection process on the
   * broker's side.
   */
  readonly urgentManager: AmqpConnectionManager;
  private readonly log: Logger;
  private publisher: ChannelWrapper | null = null;
  private urgentPublisher: ChannelWrapper | null = null;
  private readonly blockedBy = new Set<AmqpConnectionManager>();
  private closing: Promise<void> | null = null;

  constructor(private readonly opts: BrokerOptions) {
    this.log = opts.logger.child({ component: 'broker' });
    const name = opts.name ?? 'postmaster';
    this.manager = this.connect(name);
    this.urgentManager = opts.urgentConnection ? this.connect(`${name}:urgent`) : this.manager;
  }

  private connect(name: string): AmqpConnectionManager {
    const urls = this.opts.urls.split(',').map((u) => u.trim()).filter(Boolean);
    const manager = amqp.connect(urls, {
      heartbeatIntervalInSeconds: this.opts.heartbeatS ?? 5,
      reconnectTimeInSeconds: 1,
      // TCP_NODELAY: amqplib leaves Nagle's algorithm on, so a small frame written while an earlier
      // one is unacknowledged waits for the peer's delayed ACK — 20–40 ms per hop at a low rate
      // (measured: one message every 10 ms through a queue on one connection, p50 24 ms → 2 ms;
      // `npm run bench`, "hop latency"). The writes are already gathered per multiplexer pass
      // (batchFrameWrites); at full load the raw hop measured the same with and without it.
      connectionOptions: { noDelay: true, clientProperties: { connection_name: name } },
    });
    const log = this.log.child({ connection: name });
    manager.on('connect', ({ connection, url }) => {
      // Registered before any channel wrapper's listener: in place before the first channel opens.
      batchFrameWrites(connection as unknown as Connection);
      log.info({ url: maskUrl(String(url)) }, 'connected to RabbitMQ');
    });
    manager.on('disconnect', ({ err }) => {
      this.blockedBy.delete(manager);
      log.warn({ err: err?.message }, 'disconnected from RabbitMQ; reconnecting');
    });
    manager.on('connectFailed', ({ err, url }) =>
      log.warn({ err: err?.message, url: maskUrl(String(url)) }, 'RabbitMQ connection attempt failed'),
    );
    manager.on('blocked', ({ reason }) => {
      this.blockedBy.add(manager);
      log.warn({ reason }, 'RabbitMQ blocked publishing (resource alarm)');
    });
    manager.on('unblocked', () => {
      this.blockedBy.delete(manager);
      log.info('RabbitMQ unblocked publishing');
    });
    return manager;
  }

  private managerFor(urgent: boolean): AmqpConnectionManager {
    return urgent ? this.urgentManager : this.manager;
  }

  /** The main connection is up (or, with `urgent`, the urgent lanes' one). */
  connected(urgent = false): boolean {
    return this.managerFor(urgent).isConnected();
  }

  /** A resource alarm has blocked publishing (on either connection: the alarm is the broker's). */
  blocked(): boolean {
    return this.blockedBy.size > 0;
  }

  /** The live amqplib connection, for one-off work on throwaway channels (topology assertion). */
  connection(): Connection {
    const c = this.manager.connection as Connection | undefined;
    if (!c) throw new BrokerUnavailableError('not connected to RabbitMQ', 'disconnected');
    return c;
  }

  /** Resolves once every connection of this broker (the urgent one too, when it has its own) is up. */
  async waitForConnect(timeoutMs: number): Promise<void> {
    const pending = [...new Set([this.manager, this.urgentManager])].filter((m) => !m.isConnected());
    if (pending.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        Promise.all(pending.map((m) => new Promise<void>((resolve) => m.once('connect', () => resolve())))),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new BrokerUnavailableError(`could not connect to RabbitMQ at ${maskUrl(this.opts.urls)} within ${timeoutMs} ms`, 'timeout')),
            timeoutMs,
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * A channel with its own setup (re-run after every reconnect). Every underlying channel gets an
   * `error` listener first: amqplib emits a channel-level error (a 404 on `basic.consume`, a publish
   * to a missing exchange) on the channel, and without a listener the throw tears down the whole
   * connection — every other channel of the process with it.
   */
  channel(name: string, setup?: (ch: ConfirmChannel) => Promise<void>, confirm = true, urgent = false): ChannelWrapper {
    return this.managerFor(urgent).createChannel({
      name,
      confirm,
      json: false,
      setup: async (ch: ConfirmChannel) => {
        ch.on('error', (err: Error) => this.log.warn({ channel: name, err: err.message }, 'channel closed by the broker'));
        await setup?.(ch);
      },
    });
  }

  /**
   * Publishes persistently on a confirm channel and resolves only when the broker has confirmed.
   * Fails at once when disconnected or blocked, and after publishTimeoutMs otherwise, so callers
   * never pile up work in memory while the broker is away.
   */
  async publish(a: PublishArgs): Promise<void> {
    if (this.closing) throw new BrokerUnavailableError('broker connection is closing', 'closed');
    if (!this.connected(a.urgent)) throw new BrokerUnavailableError('RabbitMQ is unreachable', 'disconnected');
    if (this.blocked()) throw new BrokerUnavailableError('RabbitMQ has blocked publishing (resource alarm)', 'blocked');
    const channel = a.urgent ? (this.urgentPublisher ??= this.openPublisher('publisher:urgent', true)) : (this.publisher ??= this.openPublisher('publisher'));
    const options: Options.Publish & { timeout: number } = {
      persistent: true,
      contentType: 'application/json',
      messageId: a.messageId,
      correlationId: a.correlationId,
      timestamp: Math.floor((a.timestamp ?? Date.now()) / 1000),
      headers: a.headers,
      priority: a.priority,
      mandatory: false,
      timeout: this.opts.publishTimeoutMs,
    };
    try {
      await channel.publish(a.exchange, a.routingKey, a.body, options);
    } catch (err) {
      const msg = (err as Error).message ?? String(err);
      const reason = /timeout/i.test(msg) ? 'timeout' : /nack|rejected/i.test(msg) ? 'nack' : 'disconnected';
      throw new BrokerUnavailableError(`publish to ${a.exchange} not confirmed: ${msg}`, reason, { cause: err });
    }
  }

  /**
   * The shared confirm channel. Its `error` events (a publish queued across a reconnect that hits
   * the closing channel) must be listened to, or Node throws them and the process exits; the
   * publishes themselves reject and their callers decide.
   */
  private openPublisher(name: string, urgent = false): ChannelWrapper {
    const ch = this.channel(name, undefined, true, urgent);
    ch.on('error', (err: Error) => this.log.warn({ err: err.message }, 'publisher channel error'));
    return ch;
  }

  /** Idempotent: the same promise when called twice. */
  close(): Promise<void> {
    return (this.closing ??= (async () => {
      await this.publisher?.close().catch(() => {});
      await this.urgentPublisher?.close().catch(() => {});
      await this.manager.close().catch(() => {});
      if (this.urgentManager !== this.manager) await this.urgentManager.close().catch(() => {});
    })());
  }
}
