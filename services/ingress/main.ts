import { loadConfig } from '../../shared/platform/config.js';
import { runMain } from '../../shared/platform/shutdown.js';
import { startIngress } from './service.js';

await runMain(async () => {
  const svc = await startIngress(loadConfig(process.env, {}, 'ingress'));
  return { log: svc.rt.log, close: () => svc.close() };
});
