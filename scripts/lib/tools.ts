/**
 * The machine's command-line tools: running one, finding one on PATH, RabbitMQ's own scripts and
 * the broker plugins every RabbitMQ of ours runs with.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

/**
 * The RabbitMQ plugins every broker of ours enables: ensure-services on the machine's own, the
 * private chaos and cluster nodes, compose and Kubernetes (their tests check against this list).
 */
export const PLUGINS = ['rabbitmq_consistent_hash_exchange', 'rabbitmq_management', 'rabbitmq_prometheus'];

export interface RunResult {
  stdout: string;
  stderr: string;
}

/** Runs a command; rejects with its stderr on a non-zero exit or after `timeoutMs`. */
export async function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {}): Promise<RunResult> {
  try {
    const { stdout, stderr } = await execFileP(cmd, args, {
      env: opts.env ?? process.env,
      timeout: opts.timeoutMs ?? 60_000,
      cwd: opts.cwd,
      maxBuffer: 4 * 1024 * 1024,
    });
    return { stdout: String(stdout), stderr: String(stderr) };
  } catch (err) {
    const e = err as Error & { stderr?: string; stdout?: string; code?: unknown };
    const detail = (e.stderr || e.stdout || e.message).trim().split('\n').slice(0, 6).join(' | ');
    throw new Error(`${path.basename(cmd)} ${args.join(' ')} failed (${String(e.code ?? 'error')}): ${detail}`, { cause: err });
  }
}

/** The path of a command on PATH, or null. */
export function onPath(cmd: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir && existsSync(path.join(dir, cmd))) return path.join(dir, cmd);
  }
  return null;
}

/**
 * Where RabbitMQ's own scripts are. The Debian/Ubuntu package puts wrappers in /usr/sbin that
 * switch to the `rabbitmq` user (and refuse anyone else); the real scripts in /usr/lib/rabbitmq/bin
 * run as whoever calls them, with our environment, which is what a private node needs.
 */
export function rabbitTool(tool: 'rabbitmq-server' | 'rabbitmqctl'): string {
  const debian = path.join('/usr/lib/rabbitmq/bin', tool);
  if (existsSync(debian)) return debian;
  return onPath(tool) ?? tool;
}

/** True when a private RabbitMQ node and Redis can be started on this machine. */
export function privateInfraAvailable(): { ok: true } | { ok: false; why: string } {
  if (!onPath('rabbitmq-server') && !existsSync('/usr/lib/rabbitmq/bin/rabbitmq-server')) {
    return { ok: false, why: 'rabbitmq-server is not on PATH (install RabbitMQ 3.10+ to run the chaos scenarios)' };
  }
  if (!onPath('redis-server') || !onPath('redis-cli')) return { ok: false, why: 'redis-server / redis-cli are not on PATH' };
  return { ok: true };
}
