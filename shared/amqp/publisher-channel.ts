/**
 * Confirmed, mandatory publishing on one amqplib confirm channel that is replaced whenever it dies.
 *
 * Why not amqp-connection-manager's ChannelWrapper (which the consumers use): a confirm channel
 * pairs each broker confirm with the oldest unanswered publish, by count. amqplib records the
 * confirm callback *before* it encodes the frame, so a message its encoder refuses (a property over
 * 255 bytes) leaves a callback with no frame behind it, and from then on every confirm is paired
 * with the publish before its own: each 202 would answer for another message. ChannelWrapper also
 * keeps a channel the broker closed (a publish to a deleted exchange) until the whole connection
 * reconnects, so every publish meanwhile waits out its timeout. Here:
 * - a message that cannot be encoded is refused before anything is counted (UnencodableMessageError);
 * - should amqplib still throw mid-publish, the channel is retired, never reused out of step;
 * - a closed channel fails only the publishes in flight on it; the next publish opens a new one;
 * - every publish is `mandatory`: one that reaches no queue comes back (basic.return arrives before
 *   its confirm) and is refused (UnroutableError), never answered as stored.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { AmqpConnectionManager } from 'amqp-connection-manager';
import type { ChannelModel, ConfirmChannel, Message, Options } from 'amqplib';
import type { Logger } from '../platform/logger.js';

const require = createRequire(import.meta.url);
// amqplib's own argument mapping and encoders: the dry run refuses exactly what the real publish would.
// Its package `exports` hide lib/, so they are loaded by file path from beside its entry point.
const amqplibLib = join(dirname(require.resolve('amqplib')), 'lib');
const Args = require(join(amqplibLib, 'api_args.js')) as { publish(ex: string, rk: string, o: Options.Publish): Record<string, unknown> };
const defs = require(join(amqplibLib, 'defs.js')) as {
  BasicPublish: number;
  BasicProperties: number;
  encodeMethod(id: number, ch: number, fields: unknown): Buffer;
  encodeProperties(id: number, ch: number, size: number, fields: unknown): Buffer;
};

const PROBE_KEY = 'postmaster.health-probe';

export type PublishFailure = 'disconnected' | 'blocked' | 'timeout' | 'nack' | 'closed' | 'unroutable';

export class BrokerUnavailableError extends Error {
  constructor(
    message: string,
    readonly reason: PublishFailure,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'BrokerUnavailableError';
  }

  /** True when the broker may have stored the message (a confirm timed out or its channel died). */
  get outcomeUnknown(): boolean {
    return this.reason === 'timeout' || this.reason === 'closed';
  }
}

/** No queue took the message (a binding or queue is missing): nothing was stored. */
export class UnroutableError extends BrokerUnavailableError {
  constructor(exchange: string, routingKey: string) {
    super(
      `publish to ${exchange || '(default exchange)'} reached no queue (routing key ${JSON.stringify(routingKey)}); a binding or queue is missing`,
      'unroutable',
    );
    this.name = 'UnroutableError';
  }
}

/** The message has a value AMQP cannot carry (e.g. a short string over 255 bytes); nothing was sent. */
export class UnencodableMessageError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'UnencodableMessageError';
  }
}

export interface OutgoingMessage {
  exchange: string;
  routingKey: string;
  body: Buffer;
  options: Options.Publish;
}

/**
 * A UTF-16 string of at most this many units is at most 255 bytes in UTF-8 (3 bytes a unit at most;
 * a surrogate pair is 2 units for 4 bytes): within AMQP's short-string limit whatever it holds.
 */
const SHORT_UNITS = 85;
/** Header text (keys and string values) under this many units stays far inside amqplib's 64 KiB properties buffer. */
const HEADER_UNITS = 4096;
/** The options a message may carry and still take the fast check; any other goes through the dry run. */
const SHORT_OPTIONS = ['messageId', 'correlationId', 'contentType', 'contentEncoding', 'type', 'appId', 'userId', 'replyTo', 'expiration'] as const;
const KNOWN_OPTIONS = new Set<string>([...SHORT_OPTIONS, 'headers', 'persistent', 'mandatory', 'priority', 'timestamp', 'deliveryMode']);

const isShort = (v: unknown): boolean => v === undefined || (typeof v === 'string' && v.length <= SHORT_UNITS);
const isOctet = (v: unknown): boolean => v === undefined || (Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 255);

/**
 * True when the message certainly encodes, judged without encoding it: short strings within
 * SHORT_UNITS, an octet priority, a safe-integer timestamp, and a flat header table of short names
 * with string, safe-integer or boolean values of bounded total length. False means "not known":
 * the caller then runs amqplib's own encoders (checkEncodable), which decide. The hot path's
 * messages (ULID ids, validated users and correlation ids, the lanes' headers) all pass, so each
 * is encoded once, by the real publish.
 */
export function surelyEncodable(m: OutgoingMessage): boolean {
  if (!isShort(m.exchange) || !isShort(m.routingKey)) return false;
  const o = m.options as Record<string, unknown>;
  for (const k in o) if (!KNOWN_OPTIONS.has(k)) return false;
  for (const k of SHORT_OPTIONS) if (!isShort(o[k])) return false;
  if (!isOctet(o.priority) || !isOctet(o.deliveryMode)) return false;
  if (o.timestamp !== undefined && !(Number.isSafeInteger(o.timestamp) && (o.timestamp as number) >= 0)) return false;
  const headers = o.headers;
  if (headers === undefined) return true;
  if (headers === null || typeof headers !== 'object' || Object.getPrototypeOf(headers) !== Object.prototype) return false;
  let units = 0;
  for (const k in headers) {
    const v = (headers as Record<string, unknown>)[k];
    if (k.length > SHORT_UNITS) return false;
    if (typeof v === 'string') units += v.length;
    else if (!(typeof v === 'boolean' || (typeof v === 'number' && Number.isSafeInteger(v)))) return false;
    units += k.length;
    if (units > HEADER_UNITS) return false;
  }
  return true;
}

/** amqplib's own encoding of the message's method and properties, thrown away: throws what the real publish would. */
export function dryRunEncode(m: OutgoingMessage): void {
  const fields = Args.publish(m.exchange, m.routingKey, m.options);
  defs.encodeMethod(defs.BasicPublish, 1, fields);
  defs.encodeProperties(defs.BasicProperties, 1, m.body.length, fields);
}

/** Throws UnencodableMessageError if amqplib's encoder would refuse the message. */
export function checkEncodable(m: OutgoingMessage): void {
  if (surelyEncodable(m)) return;
  try {
    dryRunEncode(m);
  } catch (err) {
    throw new UnencodableMessageError(`message ${m.options.messageId ?? ''} cannot be encoded for AMQP: ${(err as Error).message}`, { cause: err });
  }
}

/** amqplib answers every unconfirmed publish of a closing channel with 'channel closed'; a nack otherwise. */
function confirmError(err: unknown): BrokerUnavailableError {
  if ((err as Error)?.message === 'channel closed') {
    return new BrokerUnavailableError('the publishing channel closed before the broker confirmed; the outcome is unknown', 'closed', { cause: err });
  }
  return new BrokerUnavailableError('the broker refused the message (nack)', 'nack', { cause: err });
}

interface Pending {
  messageId: string;
  exchange: string;
  routingKey: string;
  returned: boolean;
  settle(err: Error | null): void;
}

interface Live {
  ch: ConfirmChannel;
  pending: Set<Pending>;
  /** Pending publishes by message id, to match a basic.return to its publish. */
  byId: Map<string, Pending[]>;
  /** False after publish() returned false, until the channel drains. */
  room: boolean;
}

export interface PublisherChannelOptions {
  manager: AmqpConnectionManager;
  name: string;
  logger: Logger;
  timeoutMs: number;
  onReturned?(exchange: string, routingKey: string): void;
}

export class PublisherChannel {
  private live: Live | null = null;
  private opening: Promise<Live> | null = null;
  private drainWaiters: Array<() => void> = [];
  /** Since when publishing has been failing (timeouts, channel errors) with no confirm since; null when fine. */
  failingSince: number | null = null;
  lastFailure: string | null = null;
  private closed = false;
  private probing = false;

  constructor(private readonly o: PublisherChannelOptions) {}

  /**
   * After a failure, publishing is only known to work again once a confirm arrives. A service that
   * went unready receives no traffic, so the health check sends this probe: a transient message to
   * a queue that does not exist, which the broker returns and confirms (no queue gets it).
   */
  async probe(): Promise<void> {
    if (this.probing) return;
    this.probing = true;
    try {
      await this.publish({ exchange: '', routingKey: PROBE_KEY, body: Buffer.alloc(0), options: { messageId: PROBE_KEY, persistent: false } });
    } catch (err) {
      if (!(err instanceof UnroutableError)) throw err;
    } finally {
      this.probing = false;
    }
  }

  /** Resolves once the broker confirmed this very message; rejects with what went wrong. */
  async publish(m: OutgoingMessage): Promise<void> {
    checkEncodable(m);
    let live = await this.channel();
    if (!live.room) await this.waitForRoom(live);
    // The channel may have died while this waited: publish on its successor, not into a closed one.
    if (this.live !== live) live = await this.channel();
    await new Promise<void>((resolve, reject) => this.send(live, m, resolve, reject));
  }

  private send(live: Live, m: OutgoingMessage, resolve: () => void, reject: (e: Error) => void): void {
    const messageId = m.options.messageId ?? '';
    const timer = setTimeout(
      () => p.settle(new BrokerUnavailableError(`no broker confirm within ${this.o.timeoutMs} ms; the outcome is unknown`, 'timeout')),
      this.o.timeoutMs,
    );
    const p: Pending = {
      messageId,
      exchange: m.exchange,
      routingKey: m.routingKey,
      returned: false,
      settle: (err) => {
        if (!live.pending.delete(p)) return;
        clearTimeout(timer);
        this.forgetId(live, p);
        this.note(err);
        if (err) reject(err);
        else if (p.returned) reject(new UnroutableError(p.exchange, p.routingKey));
        else resolve();
      },
    };
    live.pending.add(p);
    const same = live.byId.get(messageId);
    if (same) same.push(p);
    else live.byId.set(messageId, [p]);
    try {
      live.room = live.ch.publish(m.exchange, m.routingKey, m.body, { ...m.options, mandatory: true }, (err: unknown) =>
        p.settle(err ? confirmError(err) : null),
      );
    } catch (err) {
      // Nothing was written, but amqplib may already have counted a confirm: this channel is out
      // of step and must not carry another publish.
      p.settle(new BrokerUnavailableError(`publish failed before it was sent: ${(err as Error).message}`, 'closed', { cause: err }));
      this.retire(live, `publish threw: ${(err as Error).message}`);
    }
  }

  private forgetId(live: Live, p: Pending): void {
    const list = live.byId.get(p.messageId);
    if (!list) return;
    const i = list.indexOf(p);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) live.byId.delete(p.messageId);
  }

  /** Tracks whether publishing works: any confirm heals; a timeout or a lost channel marks failing. */
  private note(err: Error | null): void {
    if (!err || err instanceof UnroutableError || (err as BrokerUnavailableError).reason === 'nack') {
      this.failingSince = null;
      return;
    }
    this.lastFailure = err.message;
    this.failingSince ??= Date.now();
  }

  private async channel(): Promise<Live> {
    if (this.closed) throw new BrokerUnavailableError('broker connection is closing', 'closed');
    if (this.live) return this.live;
    return (this.opening ??= this.open().finally(() => (this.opening = null)));
  }

  private async open(): Promise<Live> {
    const conn = this.o.manager.connection as ChannelModel | undefined;
    if (!conn) throw new BrokerUnavailableError('RabbitMQ is unreachable', 'disconnected');
    let timer: NodeJS.Timeout | undefined;
    let ch: ConfirmChannel;
    try {
      ch = await Promise.race([
        conn.createConfirmChannel(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no channel within ${this.o.timeoutMs} ms`)), this.o.timeoutMs);
        }),
      ]);
    } catch (err) {
      const e = new BrokerUnavailableError(`could not open a publishing channel: ${(err as Error).message}`, 'disconnected', { cause: err });
      this.note(e);
      throw e;
    } finally {
      clearTimeout(timer);
    }
    const live: Live = { ch, pending: new Set(), byId: new Map(), room: true };
    ch.on('error', (err: Error) => this.o.logger.warn({ channel: this.o.name, err: err.message }, 'publishing channel closed by the broker'));
    ch.on('close', () => this.retire(live, 'channel closed'));
    ch.on('drain', () => {
      live.room = true;
      for (const wake of this.drainWaiters.splice(0)) wake();
    });
    ch.on('return', (msg: Message) => this.returned(live, msg));
    if (this.closed) {
      await ch.close().catch(() => {});
      throw new BrokerUnavailableError('broker connection is closing', 'closed');
    }
    this.live = live;
    return live;
  }

  private returned(live: Live, msg: Message): void {
    const p = live.byId.get(msg.properties.messageId ?? '')?.find((x) => !x.returned);
    if (p) p.returned = true;
    if (msg.fields.routingKey === PROBE_KEY && msg.fields.exchange === '') return;
    this.o.onReturned?.(msg.fields.exchange, msg.fields.routingKey);
    this.o.logger.warn({ exchange: msg.fields.exchange, messageId: msg.properties.messageId }, 'publish reached no queue (returned)');
  }

  /** Takes the channel out of service and fails what is in flight on it (outcome unknown). */
  private retire(live: Live, why: string): void {
    if (this.live === live) this.live = null;
    for (const wake of this.drainWaiters.splice(0)) wake();
    for (const p of [...live.pending]) {
      p.settle(new BrokerUnavailableError(`the publishing channel closed before the broker confirmed (${why}); the outcome is unknown`, 'closed'));
    }
    live.ch.close().catch(() => {});
  }

  private waitForRoom(live: Live): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new BrokerUnavailableError(`publishing channel full for ${this.o.timeoutMs} ms`, 'timeout')), this.o.timeoutMs);
      this.drainWaiters.push(() => {
        clearTimeout(timer);
        if (this.live === live) resolve();
        else reject(new BrokerUnavailableError('the publishing channel closed while full', 'closed'));
      });
    });
  }

  /** Fails what is in flight and closes the channel. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    const live = this.live;
    if (live) this.retire(live, 'closing');
  }
}
