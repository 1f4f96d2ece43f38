/**
 * A child for memory-limit.test.ts: serves its V8 heap limit and memory cgroup on PROBE_PORT, and
 * on /grow fills 64 MiB buffers until it is killed or has held PROBE_GROW_MB.
 */
import http from 'node:http';
import { readFileSync } from 'node:fs';
import v8 from 'node:v8';

const held: Buffer[] = [];
http
  .createServer((req, res) => {
    if (req.url === '/grow') {
      for (let mb = 0; mb < Number(process.env.PROBE_GROW_MB); mb += 64) held.push(Buffer.alloc(64 * 1024 * 1024, 1));
      res.end(JSON.stringify({ heldMb: held.length * 64 }));
      return;
    }
    const cgroup = readFileSync('/proc/self/cgroup', 'utf8');
    res.end(JSON.stringify({ heapLimitMb: v8.getHeapStatistics().heap_size_limit / 1024 ** 2, cgroup }));
  })
  .listen(Number(process.env.PROBE_PORT), '127.0.0.1');
