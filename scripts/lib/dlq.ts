/**
 * Reads a dead-letter queue through raw amqplib (side effects checked outside the code under test).
 * Destructive: it takes the messages, so call it once, at the end of a test or a scenario.
 */
import amqplib from 'amqplib';

export interface DeadLetter {
  id: string | undefined;
  routingKey: string;
  headers: Record<string, any>;
  body: string;
}

/** Takes every message of `queue`, oldest first. */
export async function drainQueue(amqpUrl: string, queue: string): Promise<DeadLetter[]> {
  const conn = await amqplib.connect(amqpUrl);
  try {
    const ch = await conn.createChannel();
    const out: DeadLetter[] = [];
    for (;;) {
      const m = await ch.get(queue, { noAck: true });
      if (!m) break;
      out.push({ id: m.properties.messageId, routingKey: m.fields.routingKey, headers: m.properties.headers ?? {}, body: m.content.toString() });
    }
    return out;
  } finally {
    await conn.close().catch(() => undefined);
  }
}
