/**
 * The dispatcher service: consumes the dispatch lanes (urgent + owned shards).
 */
import type { Config } from '../../shared/config.js';
import type { Logger } from '../../shared/logger.js';
import { serveMetrics } from '../../shared/metrics.js';
import { createRuntime, type Runtime } from '../../shared/runtime.js';
import { runSteps } from '../../shared/shutdown.js';
import { StageWorker } from '../../shared/stage/worker.js';
import { createAssigner } from '../../shared/stage/membership.js';
import { EchoHandler, HttpBotHandler } from './bot-handler.js';
import { createDispatchHandler } from './handler.js';

export interface Dispatcher {
  rt: Runtime;
  worker: StageWorker;
  metricsPort: number;
  close(): Promise<void>;
}

export async function startDispatcher(cfg: Config, opts: { logger?: Logger } = {}): Promise<Dispatcher> {
  const rt = await createRuntime(cfg, { service: 'dispatcher', logger: opts.logger });
  const bot = cfg.botHandlerUrl ? new HttpBotHandler(cfg.botHandlerUrl, cfg.botHandlerTimeoutMs, rt.metrics) : new EchoHandler();
  const worker = new StageWorker(rt, 'dispatch', createDispatchHandler({ rt, bot }), { assigner: createAssigner(rt, 'dispatch') });
  await worker.start();
  const metrics = await serveMetrics(rt.metrics, cfg.metricsPort, () => worker.ready());
  let closing: Promise<void> | null = null;
  return {
    rt,
    worker,
    metricsPort: metrics.port,
    close: () =>
      (closing ??= runSteps(rt.log, [
        ['stop workers', () => worker.close()],
        ['stop metrics', () => metrics.close()],
        ['close broker and redis', () => rt.close()],
      ])),
  };
}
