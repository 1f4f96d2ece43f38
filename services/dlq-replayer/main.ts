import { loadConfig } from '../../shared/platform/config.js';
import { runMain } from '../../shared/platform/shutdown.js';
import { startReplayer } from './service.js';

await runMain(async () => {
  const svc = await startReplayer(loadConfig(process.env, {}, 'dlq-replayer'));
  return { log: svc.rt.log, close: () => svc.close() };
});
