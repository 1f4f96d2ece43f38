import { loadConfig } from '../../shared/config.js';
import { runMain } from '../../shared/shutdown.js';
import { startIngress } from './service.js';

await runMain(async () => {
  const svc = await startIngress(loadConfig(process.env, {}, 'ingress'));
  return { log: svc.rt.log, close: () => svc.close() };
});
