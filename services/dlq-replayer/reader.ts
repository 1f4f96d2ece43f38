/**
 * Reads the DLQ without changing it: the read behind `stats`, `list`, `show`, `--dry-run` and a
 * job's pre-scan.
 *
 * One channel consumes the queue **without acking anything**, up to the depth it had when the read
 * began (so new dead letters are not chased), then closes; the broker returns every delivery it
 * handed out. A quorum queue returns the deliveries of a closed channel to the head of the queue
 * sorted by their position, so the DLQ is in its old order afterwards (checked on RabbitMQ 3.10.8
 * with one and with several consumers). Two things do change: each read message's
 * `x-delivery-count` goes up by one and its `redelivered` flag is set. The DLQ's policy gives it a
 * delivery limit no read count reaches (DLQ_DELIVERY_LIMIT): without one, RabbitMQ 4.x's default of
 * 20 would drop every dead letter on the 21st read.
 *
 * Not `basic.get`: it works on a quorum queue without SAC, but on 3.10.8 the messages it took came
 * back in a *different* order when the channel closed. Not `nack(requeue)` one by one either: a
 * quorum queue puts a requeued message back at the head, so the next read gets it again.
 *
 * The broker's prefetch count is a 16-bit field, so a read of more than 65,535 messages opens
 * several consumers on the channel, each with its share of the window.
 */
import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import { decodeDeadLetter, markerOf, type DeadLetter } from './dead-letter.js';
import type { LaneIndex } from './lanes.js';

const PER_CONSUMER_PREFETCH = 65_535;
const DEFAULT_IDLE_MS = 3000;
const RETURN_WAIT_MS = 5000;

export class DlqMissingError extends Error {
  constructor(queue: string, options?: { cause?: unknown }) {
    super(`queue ${queue} does not exist in this vhost: check AMQP_URL and TOPOLOGY_PREFIX, or start a service once to declare the topology`, options);
    this.name = 'DlqMissingError';
  }
}

export interface ReadOptions {
  /** Read at most this many messages (default: the depth when the read began). */
  max?: number;
  /** Stop waiting for the rest after this long without a delivery (someone else holds them). */
  idleMs?: number;
}

export interface ReadResult {
  /** Messages in the queue when the read began. */
  depth: number;
  /** Messages handed to the visitor. */
  read: number;
  /** The visitor asked to stop before the end. */
  stopped: boolean;
}

/** Return 'stop' to end the read early. */
export type Visit<T> = (item: T, position: number) => 'stop' | void;

/** Depth of a queue (ready messages) on a throwaway channel; a missing queue is a DlqMissingError. */
export async function queueDepth(conn: ChannelModel, queue: string): Promise<number> {
  const ch = await conn.createChannel();
  ch.on('error', () => {});
  try {
    return (await ch.checkQueue(queue)).messageCount;
  } catch (err) {
    throw new DlqMissingError(queue, { cause: err });
  } finally {
    await ch.close().catch(() => {});
  }
}

export async function readQueue(conn: ChannelModel, queue: string, visit: Visit<ConsumeMessage>, opts: ReadOptions = {}): Promise<ReadResult> {
  const depth = await queueDepth(conn, queue);
  const target = Math.min(depth, opts.max ?? depth);
  if (target <= 0) return { depth, read: 0, stopped: false };
  const ch = await conn.createChannel();
  ch.on('error', () => {});
  let ok = false;
  try {
    const { count, stopped } = await collect(ch, queue, target, visit, opts.idleMs ?? DEFAULT_IDLE_MS);
    ok = true;
    return { depth, read: count, stopped };
  } finally {
    // Nothing was acked: closing the channel gives every delivery back, in order.
    await ch.close().catch(() => {});
    if (ok) await waitForDepth(conn, queue, depth);
  }
}

/**
 * The queue takes a closed channel's deliveries back asynchronously; wait (a little) until they are
 * all ready again, so that whoever looks next sees the DLQ as it was.
 */
export async function waitForDepth(conn: ChannelModel, queue: string, atLeast: number, timeoutMs = RETURN_WAIT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await queueDepth(conn, queue)) < atLeast && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
}

async function collect(ch: Channel, queue: string, target: number, visit: Visit<ConsumeMessage>, idleMs: number) {
  let count = 0;
  let over = false;
  let finish!: (r: { count: number; stopped: boolean }) => void;
  let fail!: (err: unknown) => void;
  const done = new Promise<{ count: number; stopped: boolean }>((resolve, reject) => {
    finish = (r) => ((over = true), resolve(r));
    fail = (err) => ((over = true), reject(err));
  });
  done.catch(() => {});
  const timer = setTimeout(() => finish({ count, stopped: false }), idleMs);
  const onMessage = (msg: ConsumeMessage | null) => {
    if (over) return;
    if (!msg) return fail(new Error(`the broker cancelled the read of ${queue}`));
    count++;
    timer.refresh();
    try {
      const stop = visit(msg, count) === 'stop';
      if (stop || count >= target) finish({ count, stopped: stop });
    } catch (err) {
      fail(err);
    }
  };
  ch.once('close', () => !over && fail(new Error(`the channel reading ${queue} was closed by the broker`)));
  try {
    for (let left = target; left > 0 && !over; left -= PER_CONSUMER_PREFETCH) {
      await ch.prefetch(Math.min(left, PER_CONSUMER_PREFETCH));
      await ch.consume(queue, onMessage, { noAck: false });
    }
    return await done;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Reads the DLQ as decoded dead letters, skipping replay markers (they belong to a running pass).
 * `position` is the dead letter's 1-based place in the queue.
 */
export async function readDeadLetters(
  conn: ChannelModel,
  queue: string,
  lanes: LaneIndex,
  visit: Visit<DeadLetter>,
  opts: ReadOptions = {},
): Promise<ReadResult & { markers: number }> {
  let markers = 0;
  let position = 0;
  const r = await readQueue(
    conn,
    queue,
    (msg) => {
      if (markerOf(msg) !== null) {
        markers++;
        return;
      }
      return visit(decodeDeadLetter(msg, lanes), ++position);
    },
    opts,
  );
  return { ...r, markers };
}
