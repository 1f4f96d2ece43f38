import { loadConfig } from '../../shared/config.js';
import { runMain } from '../../shared/shutdown.js';
import { startSender } from './service.js';

await runMain(async () => {
  const svc = await startSender(loadConfig(process.env, {}, 'sender'));
  return { log: svc.rt.log, close: () => svc.close() };
});
