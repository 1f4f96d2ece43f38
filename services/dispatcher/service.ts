/**
 * The dispatcher service: consumes the dispatch lanes (urgent + owned shards) and runs the scheduler
 * that moves due scheduled sends into them.
 */
import type { Config } from '../../shared/platform/config.js';
import type { Logger } from '../../shared/platform/logger.js';
import { serveMetrics } from '../../shared/platform/metrics.js';
import { createRuntime, type Runtime } from '../../shared/amqp/runtime.js';
import { DispatcherMetrics } from './metrics.js';
import { runSteps } from '../../shared/platform/shutdown.js';
import { StageWorker } from '../../shared/stage/worker.js';
import { createAssigner } from '../../shared/stage/membership.js';
import { EchoHandler, HttpBotHandler } from './bot-handler.js';
import { createDispatchHandler } from './handler.js';
import { Scheduler } from './scheduler.js';
import { StatusStore } from '../../shared/domain/status.js';
import { WindowBook } from '../../shared/domain/window.js';

export interface Dispatcher {
  rt: Runtime<DispatcherMetrics>;
  worker: StageWorker;
  scheduler: Scheduler;
  metricsPort: number;
  close(): Promise<void>;
}

export async function startDispatcher(cfg: Config, opts: { logger?: Logger } = {}): Promise<Dispatcher> {
  const rt = await createRuntime(cfg, { service: 'dispatcher', metrics: DispatcherMetrics, logger: opts.logger });
  const bot = cfg.botHandlerUrl
    ? new HttpBotHandler(cfg.botHandlerUrl, cfg.botHandlerTimeoutMs, rt.metrics, cfg.botHandlerToken, cfg.botHandlerMaxResponseBytes)
    : new EchoHandler();
  const status = new StatusStore(rt);
  const worker = new StageWorker(rt, 'dispatch', createDispatchHandler({ rt, bot, status, windows: new WindowBook(rt) }), {
    assigner: createAssigner(rt, 'dispatch'),
  });
  const scheduler = new Scheduler(rt);
  try {
    await worker.start();
    await scheduler.start();
  } catch (err) {
    await runSteps(rt.log, [
      ['stop scheduler', () => scheduler.close()],
      ['stop workers', () => worker.close()],
      ['close broker and redis', () => rt.close()],
    ]);
    throw err;
  }
  const metrics = await serveMetrics(
    rt.metrics,
    cfg.metricsPort,
    rt.health.add('service', () => (worker.ready() ? null : 'not started, or shutting down')).add('consume', () => worker.consumeProblem()),
  );
  let closing: Promise<void> | null = null;
  return {
    rt,
    worker,
    scheduler,
    metricsPort: metrics.port,
    close: () =>
      (closing ??= runSteps(rt.log, [
        ['stop scheduler', () => scheduler.close()],
        ['stop workers', () => worker.close()],
        ['stop metrics', () => metrics.close()],
        ['close broker and redis', () => rt.close()],
      ])),
  };
}
