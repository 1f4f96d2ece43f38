import { loadConfig } from '../../shared/platform/config.js';
import { runMain } from '../../shared/platform/shutdown.js';
import { startDispatcher } from './service.js';

await runMain(async () => {
  const svc = await startDispatcher(loadConfig(process.env, {}, 'dispatcher'));
  return { log: svc.rt.log, close: () => svc.close() };
});
