/**
 * Makes sure RabbitMQ (with the three plugins) and Redis are up for `npm start` and `npm test`.
 * On a machine with the Debian packages it starts what is down; elsewhere it says which one
 * command to run. Only local services are touched: a remote AMQP_URL/REDIS_URL is only checked.
 */
import { execFile } from 'node:child_process';
import net from 'node:net';
import { promisify } from 'node:util';

const run = promisify(execFile);
export const PLUGINS = ['rabbitmq_consistent_hash_exchange', 'rabbitmq_management', 'rabbitmq_prometheus'];
const ELSEWHERE = 'docker compose up -d rabbitmq redis';

export function portOpen(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

export async function waitForPort(host: string, port: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await portOpen(host, port)) return true;
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

async function have(cmd: string): Promise<boolean> {
  try {
    await run('sh', ['-c', `command -v ${cmd}`]);
    return true;
  } catch {
    return false;
  }
}

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
    if (!(await waitForPort(host, port, 5000))) fail(`RabbitMQ at ${host}:${port} is unreachable.`);
    return;
  }
  if (!(await portOpen(host, port))) {
    if (!(await have('rabbitmq-server'))) fail(`RabbitMQ is not running on ${host}:${port}. Start it with: ${ELSEWHERE}`);
    console.error('postmaster: starting RabbitMQ (rabbitmq-server -detached)…');
    await run('rabbitmq-server', ['-detached']).catch(() => {});
    if (!(await waitForPort(host, port, 90_000))) fail('RabbitMQ did not come up within 90 s; see /var/log/rabbitmq/.');
  }
  if (await have('rabbitmq-plugins')) {
    // Idempotent and online: enabling an enabled plugin is a no-op.
    await run('rabbitmq-plugins', ['enable', '--quiet', ...PLUGINS], { timeout: 120_000 }).catch((err: Error) =>
      fail(`could not enable the RabbitMQ plugins ${PLUGINS.join(', ')}: ${err.message}`),
    );
  }
  if (!(await waitForPort(host, 15672, 60_000))) {
    fail(`the RabbitMQ management API is not listening on ${host}:15672; enable it with "rabbitmq-plugins enable rabbitmq_management".`);
  }
}

export async function ensureRedis(redisUrl: string): Promise<void> {
  const u = new URL(redisUrl);
  const host = u.hostname;
  const port = Number(u.port || 6379);
  if (await portOpen(host, port)) return;
  if (!isLocal(host)) fail(`Redis at ${host}:${port} is unreachable.`);
  if (!(await have('redis-server'))) fail(`Redis is not running on ${host}:${port}. Start it with: ${ELSEWHERE}`);
  console.error('postmaster: starting Redis…');
  await run('redis-server', ['--daemonize', 'yes', '--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no']);
  if (!(await waitForPort(host, port, 15_000))) fail('Redis did not come up within 15 s.');
}

export async function ensureServices(env = process.env): Promise<void> {
  await ensureRabbit(env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672');
  await ensureRedis(env.REDIS_URL ?? 'redis://127.0.0.1:6379');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await ensureServices();
}
