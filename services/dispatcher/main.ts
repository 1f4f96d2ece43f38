import { loadConfig } from '../../shared/config.js';
import { runMain } from '../../shared/shutdown.js';
import { startDispatcher } from './service.js';

await runMain(async () => {
  const svc = await startDispatcher(loadConfig(process.env, {}, 'dispatcher'));
  return { log: svc.rt.log, close: () => svc.close() };
});
