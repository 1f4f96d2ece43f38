/**
 * A child process under a memory limit, as a container runtime puts a pod's container: a memory
 * cgroup nested under this process's own, with the limit of the service's Kubernetes manifest.
 * Node sizes V8's heap from the memory it may use (`uv_get_constrained_memory`), so a service in
 * a 512 MiB cgroup gets the heap it gets in its pod, not one sized for the whole machine; and a
 * service that outgrows its limit is killed, as the kubelet's OOM killer would.
 *
 * Needs a writable cgroup memory controller (root on cgroup v1, or a delegated cgroup v2
 * subtree); where there is none, `memoryCgroups()` says why and children run without a limit.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';

export interface MemoryCgroups {
  /** The command and arguments that start `cmd args` inside a new cgroup limited to `mb`, and its removal. */
  wrap(name: string, mb: number, cmd: string, args: string[]): { cmd: string; args: string[]; remove(): void };
}

let counter = 0;

/** `sh -c JOIN sh <dir>`: the shell moves itself into the cgroup at <dir>. */
const JOIN = 'echo $$ > "$1/cgroup.procs"';

/** The cgroup memory controller this process may nest under, or the reason there is none. */
export function memoryCgroups(): MemoryCgroups | { unavailable: string } {
  const lines = readFileSync('/proc/self/cgroup', 'utf8').trim().split('\n');
  const v1 = lines.find((l) => l.split(':')[1]?.split(',').includes('memory'));
  let base: string;
  let limitFile: string;
  if (v1) {
    base = path.join('/sys/fs/cgroup/memory', v1.split(':')[2]);
    limitFile = 'memory.limit_in_bytes';
  } else {
    const v2 = lines.find((l) => l.startsWith('0::'));
    const controllers = v2 ? path.join('/sys/fs/cgroup', v2.slice(3), 'cgroup.subtree_control') : '';
    if (!v2 || !existsSync(controllers) || !readFileSync(controllers, 'utf8').split(/\s+/).includes('memory')) {
      return { unavailable: 'no cgroup memory controller this process may nest under' };
    }
    base = path.join('/sys/fs/cgroup', v2.slice(3));
    limitFile = 'memory.max';
  }
  /** A new cgroup under `base` limited to `mb`, named `name`; its path. */
  const make = (name: string, mb: number): string => {
    const dir = path.join(base, name);
    mkdirSync(dir);
    try {
      writeFileSync(path.join(dir, limitFile), String(mb * 1024 * 1024));
    } catch (err) {
      rmdirSync(dir);
      throw err;
    }
    return dir;
  };
  // Make one and move a shell into it, as wrap() will: cgroup v2 refuses the move where this
  // process's own cgroup has controllers of its own (no processes in inner nodes).
  try {
    const probe = make(`pmbench-probe-${process.pid}`, 256);
    try {
      const joined = spawnSync('/bin/sh', ['-c', JOIN, 'sh', probe], { stdio: 'ignore' });
      if (joined.status !== 0) return { unavailable: `cannot move a process into a memory cgroup under ${base}` };
    } finally {
      rmdirSync(probe);
    }
  } catch (err) {
    return { unavailable: `cannot make a memory cgroup under ${base} (${(err as NodeJS.ErrnoException).code ?? String(err)})` };
  }
  return {
    wrap(name, mb, cmd, args) {
      const dir = make(`pmbench-${process.pid}-${name}-${++counter}`, mb);
      return {
        // The shell joins the cgroup, then becomes the child: same pid, so RSS and signals reach it.
        cmd: '/bin/sh',
        args: ['-c', `${JOIN} && shift && exec "$@"`, 'sh', dir, cmd, ...args],
        remove: () => {
          try {
            rmdirSync(dir);
          } catch {
            // still populated (a grandchild outlived it) or already gone: the kernel keeps an empty one cheaply
          }
        },
      };
    },
  };
}

/** `512Mi` → 512, `1Gi` → 1024, `800M` → 763. */
function mebibytes(q: string): number {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|K|M|G)?$/.exec(q.trim());
  if (!m) throw new Error(`memory quantity ${q}: not understood`);
  const unit: Record<string, number> = { Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, K: 1e3, M: 1e6, G: 1e9, '': 1 };
  const bytes = Number(m[1]) * unit[m[2] ?? '']!;
  return Math.floor(bytes / 1024 ** 2);
}

/**
 * The memory limit (MiB) of each container of the production overlay's Deployments
 * (`infra/k8s/overlays/production/resources.yaml`), by container name: the limit the bench runs
 * each service under.
 */
export function productionMemoryLimits(repoRoot: string): Record<string, number> {
  const file = path.join(repoRoot, 'infra', 'k8s', 'overlays', 'production', 'resources.yaml');
  const out: Record<string, number> = {};
  for (const doc of parseAllDocuments(readFileSync(file, 'utf8'))) {
    const d = doc.toJS() as { spec?: { template?: { spec?: { containers?: Array<{ name: string; resources?: { limits?: { memory?: string } } }> } } } };
    for (const c of d?.spec?.template?.spec?.containers ?? []) {
      const mem = c.resources?.limits?.memory;
      if (mem) out[c.name] = mebibytes(mem);
    }
  }
  return out;
}
