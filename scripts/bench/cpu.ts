/**
 * CPU time spent by each process of the pipeline over a measurement (user + system, all threads,
 * from /proc/<pid>/stat), including the broker and Redis. Unlike rates, CPU per message hardly moves
 * when other work shares the machine, so it says what each part costs and which one bounds the rate.
 */
import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';
import { Management } from '../../shared/amqp/management.js';

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ, 100 on Linux). */
const TICKS_PER_S = 100;

export type Pids = Record<string, number>;

function cpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name, which may itself hold spaces.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / TICKS_PER_S;
  } catch {
    return NaN;
  }
}

/** The OS pids of the local RabbitMQ node (management API) and Redis (INFO server); absent when unknown. */
export async function infraPids(mgmtUrl: string, redis: Redis): Promise<Pids> {
  const out: Pids = {};
  const nodes = await new Management(mgmtUrl).call<Array<{ os_pid?: string }>>('GET', '/api/nodes').catch(() => []);
  if (nodes.length === 1 && nodes[0].os_pid) out.rabbitmq = Number(nodes[0].os_pid);
  const info = await redis.info('server').catch(() => '');
  const m = /process_id:(\d+)/.exec(info);
  if (m) out.redis = Number(m[1]);
  return out;
}

export class CpuMeter {
  private readonly start: Record<string, number>;
  private readonly selfStart = process.cpuUsage();

  /**
   * @param selfName how this process is named in the result: `bench` (a load generator, left out of
   *   the total) or the part of the system it plays (the client end of a hop, counted).
   */
  constructor(
    private readonly pids: Pids,
    private readonly selfName = 'bench',
  ) {
    this.start = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuMs(pid)]));
  }

  /** CPU ms spent since construction, by process name. */
  stop(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [k, pid] of Object.entries(this.pids)) {
      const d = cpuMs(pid) - this.start[k];
      if (Number.isFinite(d)) out[k] = d;
    }
    const self = process.cpuUsage(this.selfStart);
    out[this.selfName] = (self.user + self.system) / 1000;
    return out;
  }
}

/** Processes measured beside a system but not part of it: the load generator and the bare provider. */
const OUTSIDE = new Set(['bench', 'provider']);

/** "ingress 0.41, dispatcher 0.22, …" ms per message, largest first, with the total (`OUTSIDE` left out of it). */
export function perMessage(cpu: Record<string, number>, count: number): { byProcess: Record<string, number>; total: number } {
  const byProcess = Object.fromEntries(
    Object.entries(cpu)
      .sort((a, b) => b[1] - a[1])
      .map(([k, ms]) => [k, Math.round((ms / count) * 1000) / 1000]),
  );
  const total = Object.entries(byProcess).reduce((n, [k, v]) => (OUTSIDE.has(k) ? n : n + v), 0);
  return { byProcess, total: Math.round(total * 1000) / 1000 };
}
