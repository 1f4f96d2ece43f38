/**
 * A small client of the RabbitMQ management HTTP API (plugin rabbitmq_management, port 15672):
 * policies, vhosts and queue depths, which AMQP cannot reach.
 */
import { request } from 'undici';

export class ManagementError extends Error {
  constructor(
    message: string,
    readonly status: number | null,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ManagementError';
  }
}

export interface QueueInfo {
  name: string;
  messages: number;
  messages_ready: number;
  messages_unacknowledged: number;
  consumers: number;
  arguments: Record<string, unknown>;
  policy?: string;
  /** The definition of the policy in effect (with the operator policy merged in). */
  effective_policy_definition?: Record<string, unknown>;
  type?: string;
  leader?: string;
  single_active_consumer_tag?: string;
}

export class Management {
  private readonly base: string;
  private readonly auth: string;

  /** @param url e.g. http://guest:guest@127.0.0.1:15672 */
  constructor(url: string) {
    const u = new URL(url);
    this.auth = 'Basic ' + Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64');
    u.username = '';
    u.password = '';
    this.base = u.toString().replace(/\/$/, '');
  }

  /** Derives the management URL from an AMQP URL: same host and credentials, port 15672. */
  static urlFromAmqp(amqpUrl: string): string {
    const u = new URL(amqpUrl.split(',')[0].trim());
    return `http://${u.username || 'guest'}:${u.password || 'guest'}@${u.hostname}:15672`;
  }

  async call<T = unknown>(method: 'GET' | 'PUT' | 'DELETE' | 'POST', path: string, body?: unknown): Promise<T> {
    let res;
    try {
      res = await request(this.base + path, {
        method,
        headers: { authorization: this.auth, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        headersTimeout: 10_000,
        bodyTimeout: 30_000,
      });
    } catch (err) {
      throw new ManagementError(`RabbitMQ management API at ${this.base} is unreachable; enable it with "rabbitmq-plugins enable rabbitmq_management"`, null, {
        cause: err,
      });
    }
    const text = await res.body.text();
    if (res.statusCode >= 400) {
      throw new ManagementError(`${method} ${path} answered ${res.statusCode}: ${text.slice(0, 300)}`, res.statusCode);
    }
    return (text ? JSON.parse(text) : undefined) as T;
  }

  static vhostPath(vhost: string): string {
    return encodeURIComponent(vhost);
  }

  async putVhost(vhost: string, user = 'guest'): Promise<void> {
    const v = Management.vhostPath(vhost);
    await this.call('PUT', `/api/vhosts/${v}`, {});
    await this.call('PUT', `/api/permissions/${v}/${encodeURIComponent(user)}`, { configure: '.*', write: '.*', read: '.*' });
  }

  async deleteVhost(vhost: string): Promise<void> {
    try {
      await this.call('DELETE', `/api/vhosts/${Management.vhostPath(vhost)}`);
    } catch (err) {
      if (!(err instanceof ManagementError && err.status === 404)) throw err;
    }
  }

  async putPolicy(vhost: string, p: { name: string; pattern: string; applyTo: string; priority: number; definition: Record<string, unknown> }): Promise<void> {
    await this.call('PUT', `/api/policies/${Management.vhostPath(vhost)}/${encodeURIComponent(p.name)}`, {
      pattern: p.pattern,
      definition: p.definition,
      priority: p.priority,
      'apply-to': p.applyTo,
    });
  }

  async queues(vhost: string): Promise<QueueInfo[]> {
    return this.call<QueueInfo[]>('GET', `/api/queues/${Management.vhostPath(vhost)}?disable_stats=true&enable_queue_totals=true`);
  }

  async queue(vhost: string, name: string): Promise<QueueInfo> {
    return this.call<QueueInfo>('GET', `/api/queues/${Management.vhostPath(vhost)}/${encodeURIComponent(name)}`);
  }
}
