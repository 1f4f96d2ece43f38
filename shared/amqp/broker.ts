/**
 * The broker connection: amqp-connection-manager does the reconnecting (several cluster nodes,
 * round-robin) and re-creates channels and consumers after a broker restart; this wrapper adds
 * confirmed publishing that fails fast (503) instead of buffering while the broker is away or has
 * blocked us (memory/disk alarm).
 */
import amqp, { type AmqpConnectionManager, type ChannelWrapper } from 'amqp-connection-manager';
import type { ConfirmChannel, ChannelModel as Connection } from 'amqplib';
import type { Writable } from 'node:stream';
import type { Logger } from '../platform/logger.js';
import { maskUrl } from '../platform/config.js';
import { connectionName, consumerTag, processReplicaId } from '../platform/replica.js';
import { BrokerUnavailableError, PublisherChannel, type OutgoingMessage } from './publisher-channel.js';

export { BrokerUnavailableError, UnroutableError, UnencodableMessageError } from './publisher-channel.js';

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
  /** What the connections are named after (`postmaster-<service>`); each name ends in `@<replica>`. */
  name?: string;
  /** This replica in connection names and consumer tags (shared/platform/replica.ts); default: host and pid. */
  replica?: string;
  /**
   * Give the urgent lanes a connection of their own (`<name>:urgent`): the services do; a CLI or a
   * test that never touches them need not open it.
   */
  urgentConnection?: boolean;
  /** Called for every publish that reached no queue (a metric). */
  onReturned?(exchange: string, routingKey: string): void;
}

/** The amqplib publish of `a`: persistent JSON, its ids, headers and priority, stamped now unless it says when. */
export function outgoing(a: PublishArgs): OutgoingMessage {
  return {
    exchange: a.exchange,
    routingKey: a.routingKey,
    body: a.body,
    options: {
      persistent: true,
      contentType: 'application/json',
      messageId: a.messageId,
      correlationId: a.correlationId,
      timestamp: Math.floor((a.timestamp ?? Date.now()) / 1000),
      headers: a.headers,
      priority: a.priority,
    },
  };
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

/** How Broker.channel opens a channel. */
export interface ChannelOptions {
  /** Run on every underlying channel, after every reconnect (prefetch, consumers' bookkeeping). */
  setup?: (ch: ConfirmChannel) => Promise<void>;
  /** A confirm channel; default true. */
  confirm?: boolean;
  /** On the urgent lanes' connection; default false. */
  urgent?: boolean;
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
  private publisher: PublisherChannel | null = null;
  private urgentPublisher: PublisherChannel | null = null;
  private readonly blockedBy = new Set<AmqpConnectionManager>();
  private closing: Promise<void> | null = null;
  readonly name: string;
  readonly replica: string;

  constructor(private readonly opts: BrokerOptions) {
    this.log = opts.logger.child({ component: 'broker' });
    this.name = opts.name ?? 'postmaster';
    this.replica = opts.replica || processReplicaId();
    this.manager = this.connect(connectionName(this.name, this.replica));
    this.urgentManager = opts.urgentConnection ? this.connect(connectionName(`${this.name}:urgent`, this.replica)) : this.manager;
  }

  /** The consumer tag of this replica's subscription to `queue`: `<name>@<replica>:<queue>`. */
  consumerTag(queue: string): string {
    return consumerTag(this.name, this.replica, queue);
  }

  private connect(name: string): AmqpConnectionManager {
    const urls = this.opts.urls
      .split(',')
      .map((u) => u.trim())
      .filter(Boolean);
    const manager = amqp.connect(urls, {
      heartbeatIntervalInSeconds: this.opts.heartbeatS ?? 5,
      reconnectTimeInSeconds: 1,
      // TCP_NODELAY: amqplib leaves Nagle's algorithm on, so a small frame written while an earlier
      // one is unacknowledged would wait for the peer's delayed ACK (tens of ms per hop whenever
      // traffic is too light to fill segments). With it, a frame leaves when it is written; the
      // writes are already gathered per multiplexer pass (batchFrameWrites), so full load does not
      // turn into more, smaller segments. test/shared/broker.test.ts checks the socket option.
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
    manager.on('connectFailed', ({ err, url }) => log.warn({ err: err?.message, url: maskUrl(String(url)) }, 'RabbitMQ connection attempt failed'));
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
  channel(name: string, opts: ChannelOptions = {}): ChannelWrapper {
    const { setup, confirm = true, urgent = false } = opts;
    const wrapper = this.managerFor(urgent).createChannel({
      name,
      confirm,
      json: false,
      setup: async (ch: ConfirmChannel) => {
        ch.on('error', (err: Error) => this.log.warn({ channel: name, err: err.message }, 'channel closed by the broker'));
        await setup?.(ch);
      },
    });
    // The wrapper emits 'error' when a channel cannot be opened or set up after a reconnect (it
    // retries at the next one); unheard, the emit throws inside its async handler and becomes an
    // unhandled rejection, which ends the process.
    wrapper.on('error', (err: Error) => this.log.warn({ channel: name, err: err.message }, 'channel setup failed; retried at the next reconnect'));
    return wrapper;
  }

  /**
   * Publishes persistently and `mandatory` on a confirm channel and resolves only when the broker
   * has confirmed this very message and routed it to a queue. Fails at once when disconnected or
   * blocked, or when the message cannot be encoded (UnencodableMessageError); after
   * publishTimeoutMs otherwise (outcome unknown), so callers never pile up work in memory while
   * the broker is away.
   */
  async publish(a: PublishArgs): Promise<void> {
    if (this.closing) throw new BrokerUnavailableError('broker connection is closing', 'closed');
    if (!this.connected(a.urgent)) throw new BrokerUnavailableError('RabbitMQ is unreachable', 'disconnected');
    if (this.blocked()) throw new BrokerUnavailableError('RabbitMQ has blocked publishing (resource alarm)', 'blocked');
    const channel = a.urgent
      ? (this.urgentPublisher ??= this.openPublisher('publisher:urgent', { urgent: true }))
      : (this.publisher ??= this.openPublisher('publisher'));
    try {
      await channel.publish(outgoing(a));
    } catch (err) {
      if (err instanceof BrokerUnavailableError) {
        err.message = `publish to ${a.exchange} not confirmed: ${err.message}`;
      }
      throw err;
    }
  }

  /**
   * Since when publishing has been failing with no confirm in between (timeouts, lost channels,
   * channels that cannot be opened), on either publishing channel; null while it works.
   */
  publishFailingSince(): number | null {
    const since = [this.publisher?.failingSince, this.urgentPublisher?.failingSince].filter((t): t is number => typeof t === 'number');
    return since.length ? Math.min(...since) : null;
  }

  /** What the last failed publish said, for the health report. */
  lastPublishFailure(): string | null {
    return this.publisher?.lastFailure ?? this.urgentPublisher?.lastFailure ?? null;
  }

  /** Sends a probe on each publishing channel that is failing, so that one confirm can heal it. */
  probePublishing(): void {
    for (const p of [this.publisher, this.urgentPublisher]) {
      if (p?.failingSince != null && !this.closing) p.probe().catch(() => {});
    }
  }

  private openPublisher(name: string, { urgent = false } = {}): PublisherChannel {
    return new PublisherChannel({
      manager: this.managerFor(urgent),
      name,
      logger: this.log,
      timeoutMs: this.opts.publishTimeoutMs,
      onReturned: this.opts.onReturned,
    });
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
