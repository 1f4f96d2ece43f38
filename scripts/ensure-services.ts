/**
 * Makes sure RabbitMQ (with the three plugins) and Redis are up for `npm start` and `npm test`.
 * On a machine with the Debian packages it starts what is down; elsewhere it says which one
 * command to run. Only local services are touched: a remote AMQP_URL/REDIS_URL is only checked.
 */
import { portOpen, waitForPort } from './lib/ports.js';
import { onPath, PLUGINS, run } from './lib/tools.js';

const ELSEWHERE = 'docker compose up -d rabbitmq redis';

function isLocal(host: string): boolean {
  return ['127.0.0.1', 'localhost', '::1', '[::1]'].includes(host);
}

function fail(message: string): never {
  console.error(`postmaster: ${message}`);
  process.exit(1);
}

export async function ensureRabbit(amqpUrl: string): Promise<void> {
  const u = new URL(amqpUrl.split(',')[0].trim());
  const host = u.hostname;
  const port = Number(u.port || 5672);
  if (!isLocal(host)) {
    if (!(await waitForPort(port, host, 5000))) fail(`RabbitMQ at ${host}:${port} is unreachable.`);
    return;
  }
  if (!(await portOpen(port, host, 1000))) {
    if (!onPath('rabbitmq-server')) fail(`RabbitMQ is not running on ${host}:${port}. Start it with: ${ELSEWHERE}`);
    console.error('postmaster: starting RabbitMQ (rabbitmq-server -detached)…');
    await run('rabbitmq-server', ['-detached']).catch(() => {});
    if (!(await waitForPort(port, host, 90_000))) fail('RabbitMQ did not come up within 90 s; see /var/log/rabbitmq/.');
  }
  if (onPath('rabbitmq-plugins')) {
    // Idempotent and online: enabling an enabled plugin is a no-op.
    await run('rabbitmq-plugins', ['enable', '--quiet', ...PLUGINS], { timeoutMs: 120_000 }).catch((err: Error) =>
      fail(`could not enable the RabbitMQ plugins ${PLUGINS.join(', ')}: ${err.message}`),
    );
  }
  if (!(await waitForPort(15672, host, 60_000))) {
    fail(`the RabbitMQ management API is not listening on ${host}:15672; enable it with "rabbitmq-plugins enable rabbitmq_management".`);
  }
}

export async function ensureRedis(redisUrl: string): Promise<void> {
  const u = new URL(redisUrl);
  const host = u.hostname;
  const port = Number(u.port || 6379);
  if (await portOpen(port, host, 1000)) return;
  if (!isLocal(host)) fail(`Redis at ${host}:${port} is unreachable.`);
  if (!onPath('redis-server')) fail(`Redis is not running on ${host}:${port}. Start it with: ${ELSEWHERE}`);
  console.error('postmaster: starting Redis…');
  await run('redis-server', ['--daemonize', 'yes', '--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no']);
  if (!(await waitForPort(port, host, 15_000))) fail('Redis did not come up within 15 s.');
}

export async function ensureServices(env = process.env): Promise<void> {
  await ensureRabbit(env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672');
  await ensureRedis(env.REDIS_URL ?? 'redis://127.0.0.1:6379');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await ensureServices();
}
