/**
 * Preloaded (`node --import`) into each bench child by `npm run bench -- --profile --alloc`: V8's
 * sampling heap profiler over every allocation, including the objects that garbage collection has
 * already freed (`--heap-prof` keeps only the ones still alive, which says nothing about what drives
 * the collector), written on SIGTERM to `$PMBENCH_ALLOC_DIR/<service>/<pid>.heapprofile`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import path from 'node:path';

const dir = process.env.PMBENCH_ALLOC_DIR;
const service = path.basename(path.dirname(process.argv[1] ?? ''));
if (dir && service) {
  const session = new Session();
  session.connect();
  session.post('HeapProfiler.enable');
  session.post('HeapProfiler.startSampling', { samplingInterval: 8192, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  // Before the service's own SIGTERM handler: an in-process session answers synchronously.
  process.prependListener('SIGTERM', () => {
    session.post('HeapProfiler.stopSampling', (err, res) => {
      if (err) return;
      mkdirSync(path.join(dir, service), { recursive: true });
      writeFileSync(path.join(dir, service, `${process.pid}.heapprofile`), JSON.stringify(res.profile));
    });
  });
}
