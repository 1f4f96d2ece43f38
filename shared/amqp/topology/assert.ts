/**
 * Puts the declared topology on a broker, as a pipeline of small steps (cf. Rascal):
 * exchanges → queues → bindings → policies. `check` mode only verifies, for clusters whose
 * definitions are owned by infra (infra/rabbitmq/definitions.json).
 */
import type { Channel, ChannelModel as Connection } from 'amqplib';
import { Management } from '../management.js';
import type { Topology } from './declaration.js';

export class TopologyError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TopologyError';
  }
}

export interface AssertOptions {
  mode: 'assert' | 'check';
  /** Management API URL; policies are applied through it in assert mode. */
  managementUrl?: string;
  vhost: string;
}

/**
 * Each step uses a throwaway channel: a failed declaration closes the channel (AMQP channel error),
 * and we want the error of that one object, not a dead channel for the next.
 */
async function step<T>(conn: Connection, what: string, fn: (ch: Channel) => Promise<T>): Promise<T> {
  // Some refusals (an unknown exchange type) close the whole connection, not just the channel;
  // the channel then only says "Channel ended", so keep the connection's reason.
  let connErr: Error | null = null;
  const onConnErr = (e: Error) => (connErr = e);
  conn.on('error', onConnErr);
  const ch = await conn.createChannel();
  ch.on('error', () => {}); // surfaced through the rejected promise below
  try {
    return await fn(ch);
  } catch (err) {
    const msg = (connErr as Error | null)?.message ?? (err as Error).message ?? String(err);
    throw new TopologyError(`${what}: ${msg}`, { cause: err });
  } finally {
    conn.off('error', onConnErr);
    await ch.close().catch(() => {});
  }
}

export async function assertTopology(conn: Connection, topology: Topology, opts: AssertOptions): Promise<void> {
  const check = opts.mode === 'check';
  for (const ex of topology.exchanges) {
    await step(conn, `exchange ${ex.name} in vhost ${opts.vhost}`, (ch) =>
      check ? ch.checkExchange(ex.name) : ch.assertExchange(ex.name, ex.type, { durable: true, arguments: ex.arguments }),
    );
  }
  for (const q of topology.queues) {
    await step(conn, `queue ${q.name} in vhost ${opts.vhost}`, (ch) =>
      check ? ch.checkQueue(q.name) : ch.assertQueue(q.name, { durable: true, arguments: q.arguments }),
    );
  }
  if (!check) {
    await step(conn, 'bindings', async (ch) => {
      for (const b of topology.bindings) {
        if (b.destinationType === 'queue') await ch.bindQueue(b.destination, b.source, b.routingKey, b.arguments);
        else await ch.bindExchange(b.destination, b.source, b.routingKey, b.arguments);
      }
    });
    if (opts.managementUrl) {
      const mgmt = new Management(opts.managementUrl);
      for (const p of topology.policies) {
        try {
          await mgmt.putPolicy(opts.vhost, p);
        } catch (err) {
          throw new TopologyError(`policy ${p.name} in vhost ${opts.vhost}: ${(err as Error).message}`, { cause: err });
        }
      }
    }
  }
}
