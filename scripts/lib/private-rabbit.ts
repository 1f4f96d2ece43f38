/**
 * Private RabbitMQ nodes: each with its own node name, ports, data and log folders, config and
 * enabled-plugins file, started with `rabbitmq-server -detached` and driven with `rabbitmqctl -n`.
 * They register with the machine's epmd (as every node does) and touch nothing else of it: the
 * machine's own broker (rabbit@localhost) is never named here.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { freePorts, portOpen } from './ports.js';
import { PLUGINS, rabbitTool, run, type RunResult } from './tools.js';
import { waitFor } from './wait.js';

export interface NodePorts {
  amqp: number;
  dist: number;
  mgmt: number;
  prom: number;
}

/** The Erlang cookie shared by the nodes of one base folder and the CLI calls that drive them. */
async function ensureHome(base: string): Promise<string> {
  const home = path.join(base, 'home');
  const cookie = path.join(home, '.erlang.cookie');
  if (!existsSync(cookie)) {
    await mkdir(home, { recursive: true });
    await writeFile(cookie, randomBytes(15).toString('hex').toUpperCase());
    await chmod(cookie, 0o400);
  }
  return home;
}

export class RabbitNode {
  /** e.g. pmchaos-1a2b-1@localhost */
  readonly node: string;
  readonly dir: string;

  constructor(
    readonly base: string,
    readonly name: string,
    readonly ports: NodePorts,
  ) {
    this.node = `${name}@localhost`;
    this.dir = path.join(base, name);
  }

  amqpUrl(vhost = '/'): string {
    const path = vhost === '/' ? '' : `/${encodeURIComponent(vhost)}`;
    return `amqp://guest:guest@127.0.0.1:${this.ports.amqp}${path}`;
  }

  get mgmtUrl(): string {
    return `http://guest:guest@127.0.0.1:${this.ports.mgmt}`;
  }

  private get pidFile(): string {
    return path.join(this.dir, 'pid');
  }

  /**
   * The CLI's environment: the shared cookie (HOME) and our env file, but not RABBITMQ_DIST_PORT,
   * from which the CLI would derive its own distribution ports (+10000: past 65535 for a high port).
   */
  private ctlEnv(): NodeJS.ProcessEnv {
    return { ...process.env, HOME: path.join(this.base, 'home'), RABBITMQ_CONF_ENV_FILE: path.join(this.dir, 'rabbitmq-env.conf') };
  }

  private env(): NodeJS.ProcessEnv {
    const d = this.dir;
    return {
      ...this.ctlEnv(),
      RABBITMQ_NODENAME: this.node,
      RABBITMQ_NODE_PORT: String(this.ports.amqp),
      RABBITMQ_DIST_PORT: String(this.ports.dist),
      RABBITMQ_MNESIA_BASE: path.join(d, 'mnesia'),
      RABBITMQ_LOG_BASE: path.join(d, 'log'),
      RABBITMQ_PID_FILE: this.pidFile,
      RABBITMQ_ENABLED_PLUGINS_FILE: path.join(d, 'enabled_plugins'),
      RABBITMQ_CONFIG_FILE: path.join(d, 'rabbitmq.conf'),
      RABBITMQ_CONFIG_FILES: path.join(d, 'conf.d'),
      RABBITMQ_ADVANCED_CONFIG_FILE: path.join(d, 'advanced.config'),
      RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
      ERL_EPMD_ADDRESS: '127.0.0.1',
    };
  }

  private async writeFiles(): Promise<void> {
    const d = this.dir;
    await mkdir(path.join(d, 'conf.d'), { recursive: true });
    await ensureHome(this.base);
    await writeFile(path.join(d, 'enabled_plugins'), `[${PLUGINS.join(',')}].\n`);
    await writeFile(
      path.join(d, 'rabbitmq.conf'),
      [
        `listeners.tcp.default = 127.0.0.1:${this.ports.amqp}`,
        `management.tcp.ip = 127.0.0.1`,
        `management.tcp.port = ${this.ports.mgmt}`,
        `prometheus.tcp.ip = 127.0.0.1`,
        `prometheus.tcp.port = ${this.ports.prom}`,
        'vm_memory_high_watermark.relative = 0.4',
        '',
      ].join('\n'),
    );
    // Instead of /etc/rabbitmq/rabbitmq-env.conf, which names the machine's node.
    await writeFile(path.join(d, 'rabbitmq-env.conf'), `NODENAME=${this.node}\n`);
  }

  /** rabbitmqctl -n <this node> … */
  ctl(args: string[], timeoutMs = 60_000): Promise<RunResult> {
    return run(rabbitTool('rabbitmqctl'), ['-n', this.node, ...args], { env: this.ctlEnv(), timeoutMs });
  }

  /** The node's OS process (beam.smp), from its pid file. */
  async pid(): Promise<number | null> {
    const text = await readFile(this.pidFile, 'utf8').catch(() => '');
    const pid = Number(text.trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  }

  async alive(): Promise<boolean> {
    const pid = await this.pid();
    if (pid === null) return false;
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  }

  /** Starts the node (again, with its data, after a stop or a kill) and waits until it is booted. */
  async start(timeoutMs = 120_000): Promise<void> {
    await this.writeFiles();
    await rm(this.pidFile, { force: true });
    await run(rabbitTool('rabbitmq-server'), ['-detached'], { env: this.env(), timeoutMs: 30_000, cwd: this.dir });
    try {
      await waitFor(async () => (await this.alive()) && (await portOpen(this.ports.amqp)), {
        timeoutMs,
        intervalMs: 500,
        what: `RabbitMQ node ${this.node} on port ${this.ports.amqp}`,
      });
      await this.ctl(['await_startup', '--timeout', '60'], 90_000);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${await this.logTail()}`, { cause: err });
    }
  }

  async logTail(lines = 15): Promise<string> {
    const text = await readFile(path.join(this.dir, 'log', `${this.node}.log`), 'utf8').catch(() => '(no log)');
    return text.trim().split('\n').slice(-lines).join('\n');
  }

  async stopApp(): Promise<void> {
    await this.ctl(['stop_app'], 120_000);
  }

  async startApp(): Promise<void> {
    await this.ctl(['start_app'], 120_000);
    await this.ctl(['await_startup', '--timeout', '60'], 90_000);
  }

  async setMemoryWatermark(fraction: number): Promise<void> {
    await this.ctl(['set_vm_memory_high_watermark', String(fraction)]);
  }

  /** SIGKILL of the beam process: no goodbye to the cluster, no flush. */
  async kill9(): Promise<void> {
    const pid = await this.pid();
    if (pid === null) return;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      return;
    }
    await waitFor(async () => !(await this.alive()), { timeoutMs: 15_000, intervalMs: 100, what: `${this.node} to die` });
  }

  /** Graceful stop (the OS process exits), falling back to SIGKILL. */
  async stop(): Promise<void> {
    if (!(await this.alive())) return;
    try {
      await this.ctl(['stop', this.pidFile], 90_000);
    } catch {
      await this.kill9();
    }
  }

  /** Stops the node and removes its data. */
  async destroy(): Promise<void> {
    await this.stop();
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** Nodes with names `<prefix>-1…n` and free ports, not started yet. */
export async function allocateNodes(base: string, prefix: string, n: number): Promise<RabbitNode[]> {
  const out: RabbitNode[] = [];
  for (let i = 1; i <= n; i++) {
    const [amqp, dist, mgmt, prom] = await freePorts(4);
    out.push(new RabbitNode(base, `${prefix}-${i}`, { amqp, dist, mgmt, prom }));
  }
  return out;
}

/**
 * Starts every node, then joins the others to the first (stop_app, reset, join_cluster,
 * start_app). Quorum queues declared afterwards get a member on every node.
 */
export async function startCluster(nodes: RabbitNode[]): Promise<void> {
  await Promise.all(nodes.map((n) => n.start()));
  const [first, ...rest] = nodes;
  for (const n of rest) {
    await n.stopApp();
    await n.ctl(['reset']);
    await n.ctl(['join_cluster', first.node], 120_000);
    await n.startApp();
  }
  const status = await first.ctl(['cluster_status', '--formatter', 'json']);
  const running = (JSON.parse(status.stdout) as { running_nodes?: string[] }).running_nodes ?? [];
  if (running.length !== nodes.length) throw new Error(`cluster formed with ${running.length} of ${nodes.length} nodes running: ${running.join(', ')}`);
}

/** The comma-separated AMQP_URL of a cluster (every node, first node first). */
export function clusterUrl(nodes: RabbitNode[], vhost = '/'): string {
  return nodes.map((n) => n.amqpUrl(vhost)).join(',');
}
