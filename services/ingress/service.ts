/**
 * The ingress service: start() on a port (0 in tests), close() idempotently.
 */
import http from 'node:http';
import type { Config } from '../../shared/config.js';
import type { Logger } from '../../shared/logger.js';
import { createRuntime, type Runtime } from '../../shared/runtime.js';
import { runSteps } from '../../shared/shutdown.js';
import { createApp } from './app.js';

export interface Ingress {
  rt: Runtime;
  port: number;
  url: string;
  close(): Promise<void>;
}

export async function startIngress(cfg: Config, opts: { logger?: Logger } = {}): Promise<Ingress> {
  const rt = await createRuntime(cfg, { service: 'ingress', logger: opts.logger });
  let closing: Promise<void> | null = null;
  const app = createApp({ rt, ready: () => !closing && rt.broker.connected() });
  const server = http.createServer(app);
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(cfg.ingressPort, cfg.ingressHost, () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : cfg.ingressPort;
  rt.log.info({ port }, 'ingress listening');
  return {
    rt,
    port,
    url: `http://127.0.0.1:${port}`,
    close: () =>
      (closing ??= runSteps(rt.log, [
        ['stop accepting', () => new Promise<void>((r) => { server.close(() => r()); server.closeIdleConnections(); })],
        ['close broker and redis', () => rt.close()],
      ])),
  };
}
