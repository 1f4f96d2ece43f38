/**
 * Outages of what the workers depend on — RabbitMQ unreachable or blocking publishers, Redis
 * unreachable — are not the message's fault. A worker does not send such a message to a retry tier
 * (publishing there may fail too, and re-tiering reorders a held user) nor requeue it (every
 * requeue counts towards the shard's delivery limit, so an outage would turn healthy messages into
 * "poison"): it keeps the delivery and tries the failed step again once the dependency is back,
 * for as long as the delivery's channel lives.
 */
import { BrokerUnavailableError } from '../amqp/broker.js';
import { ClassifiedError } from './errors.js';
import { isCommandTimeout } from '../platform/redis.js';

/**
 * Codes our own code gives to errors that mean "Redis is unavailable": the send ledger's and the
 * dispatcher's (`redis-unavailable`), and the rate limiters' and messaging limits' counters, which
 * live in Redis (`limit-unavailable`).
 */
const REDIS_UNAVAILABLE_CODES = new Set(['redis-unavailable', 'limit-unavailable']);

/** 'broker' or 'redis' when the error (or one of its causes) is an outage of that dependency; null otherwise. */
export function outageOf(err: unknown): 'broker' | 'redis' | null {
  let e: unknown = err;
  for (let depth = 0; e && depth < 5; depth++) {
    // A nack is the broker refusing this message (e.g. a queue limit), not an outage.
    if (e instanceof BrokerUnavailableError) return e.reason === 'nack' ? null : 'broker';
    if (e instanceof ClassifiedError && REDIS_UNAVAILABLE_CODES.has(e.code)) return 'redis';
    const x = e as { name?: string; message?: string; cause?: unknown };
    // ioredis gives up on a command after maxRetriesPerRequest reconnects; LOADING: Redis is starting.
    if (x.name === 'MaxRetriesPerRequestError') return 'redis';
    if (x.name === 'ReplyError' && /^LOADING\b/.test(x.message ?? '')) return 'redis';
    if (isCommandTimeout(x)) return 'redis';
    e = x.cause;
  }
  return null;
}
