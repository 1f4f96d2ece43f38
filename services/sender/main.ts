import { loadConfig } from '../../shared/platform/config.js';
import { runMain } from '../../shared/platform/shutdown.js';
import { startSender } from './service.js';

await runMain(async () => {
  const svc = await startSender(loadConfig(process.env, {}, 'sender'));
  return { log: svc.rt.log, close: () => svc.close() };
});
