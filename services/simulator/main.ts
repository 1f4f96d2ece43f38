/**
 * Runs the provider simulator on its own (local fleet, docker-compose, benchmarks):
 * `node dist/services/simulator/main.js`. Configuration comes from the environment (see config.ts and
 * README.md); it logs one JSON line with its URL once listening and exits cleanly on SIGTERM/SIGINT.
 */
import { pino } from 'pino';
import { loadConfig } from './config.js';
import { startSimulator } from './server.js';

async function main(): Promise<void> {
  const { options, logLevel } = loadConfig();
  // The fleet's line shape: `service` names the process, times are ISO 8601 UTC.
  const log = pino({ level: logLevel, base: { service: 'simulator' }, timestamp: pino.stdTimeFunctions.isoTime });
  const simulator = await startSimulator(options);
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'simulator stopping');
    simulator.close().then(
      () => log.info('simulator stopped'),
      (err: unknown) => {
        log.error({ err }, 'simulator did not stop cleanly');
        process.exitCode = 1;
      },
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  // Announced once the handlers are in place: whoever waits for this line may signal at once.
  log.info(
    {
      url: simulator.url,
      port: simulator.port,
      phoneNumberId: options.phoneNumberId ?? null,
      auth: options.accessToken !== undefined,
      keepBodies: options.keepBodies,
      faults: options.faults,
      webhook: options.webhook ? options.webhook.url : null,
    },
    'simulator listening',
  );
}

main().catch((err: unknown) => {
  // Before the logger exists (bad configuration) a plain line on stderr is all there is.
  process.stderr.write(`simulator failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
