import { expect } from 'chai';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { productionMemoryLimits } from '../../scripts/lib/memory-limit.js';
import { freePort } from '../../scripts/lib/ports.js';
import { DIST, memoryLimitsUnavailable, spawnChild, type Child } from '../../scripts/lib/processes.js';

const probe = fileURLToPath(new URL('./heap-probe.js', import.meta.url));

async function start(name: string, memoryLimitMb?: number): Promise<{ child: Child; url: string }> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = await spawnChild({ name, script: probe, env: { PROBE_PORT: String(port), PROBE_GROW_MB: '512' }, readyUrl: url, memoryLimitMb });
  return { child, url };
}

describe('bench: services run under their production memory limits', () => {
  it("reads each service's limit from the production overlay", () => {
    const limits = productionMemoryLimits(path.dirname(DIST));
    for (const s of ['ingress', 'dispatcher', 'sender']) expect(limits[s], s).to.be.within(128, 8192);
  });

  it('a limited child gets a heap sized for its limit, and is killed when it outgrows it, as in a pod', async function () {
    const why = memoryLimitsUnavailable();
    if (why !== null) this.skip(); // the bench then says "no memory limit (why)" in its figures
    this.timeout(60_000);
    const free = await start('probe-unlimited');
    const limited = await start('probe-limited', 256);
    try {
      expect(limited.child.memoryLimitMb).to.equal(256);
      expect(free.child.memoryLimitMb).to.equal(null);
      const a = (await (await fetch(free.url)).json()) as { heapLimitMb: number; cgroup: string };
      const b = (await (await fetch(limited.url)).json()) as { heapLimitMb: number; cgroup: string };
      expect(b.cgroup).to.match(/pmbench-\d+-probe-limited-/);
      expect(a.cgroup).not.to.match(/pmbench-/);
      expect(b.heapLimitMb).to.be.below(2 * 256); // Node gives V8 about the limit (262 MiB of heap for 256 MiB)
      expect(a.heapLimitMb).to.be.above(b.heapLimitMb * 4); // sized for the machine (4 GiB for 24 GiB)
      // 512 MiB of buffers in a 256 MiB cgroup: the kernel's OOM killer ends it, the request with it.
      const grew = await fetch(`${limited.url}/grow`).then(
        () => 'answered',
        () => 'connection lost',
      );
      await limited.child.exited;
      expect(grew).to.equal('connection lost');
      expect(limited.child.child.signalCode).to.equal('SIGKILL');
    } finally {
      await free.child.stop();
      await limited.child.stop();
    }
  });
});
