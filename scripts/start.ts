/**
 * `npm start`: the whole fleet in the foreground — the provider simulator (when PROVIDER_BASE_URL is
 * unset), ingress, dispatcher, sender and dlq-replayer as child processes, REPLICAS of each worker.
 * Ctrl-C / SIGTERM stops them gracefully: one SIGTERM to each (each drains its in-flight work; the
 * services leave the terminal's own SIGINT to this process, shared/platform/shutdown.ts SUPERVISOR_ENV); a
 * second Ctrl-C / SIGTERM sends another, and each exits at once. A service that crashes is
 * restarted (launch). On a terminal their JSON logs become one readable line each behind the
 * process's name; JSON when stdout is not a terminal, or as LOG_FORMAT (json | pretty) says
 * (start/log-format.ts). METRICS_PORT=0 gives every service an ephemeral metrics port.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../shared/platform/config.js';
import { SUPERVISOR_ENV } from '../shared/platform/shutdown.js';
import { ensureServices } from './ensure-services.js';
import { waitForPort } from './lib/ports.js';
import { logFormat, pipeLines, prettyLine } from './start/log-format.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.resolve(here, '..');

interface ServiceSpec {
  name: string;
  main: string;
  replicas: number;
  env: (i: number) => Record<string, string>;
}

const cfg = loadConfig();
let format: ReturnType<typeof logFormat>;
try {
  format = logFormat(process.env, process.stdout.isTTY === true);
} catch (err) {
  console.error(`postmaster: ${(err as Error).message}`);
  process.exit(2);
}
await ensureServices();

const replicas = Math.max(1, Number(process.env.REPLICAS ?? 1));
/** A process's name: the service's, with `#i` when it runs several replicas. */
const processName = (service: string, i: number, of: number): string => (of > 1 ? `${service}#${i}` : service);
const prefixWidth = Math.max(...['simulator', 'ingress', 'dlq-replayer', processName('dispatcher', replicas - 1, replicas)].map((n) => n.length));
const colours = new Map<string, number>();
const children: ChildProcess[] = [];
const baseEnv: Record<string, string> = { ...(process.env as Record<string, string>) };
let providerUrl = cfg.providerBaseUrl;
/** An exit this soon after a service's first start is a start-up failure, not a crash. */
const FIRST_START_MS = 5000;

/**
 * Starts a service and supervises it like Kubernetes would: a service that exits on its own (a
 * crash, an unhandled rejection, a liveness failure of its own making) is restarted after a backoff
 * of 1 s doubling to 30 s. One that fails at its very first start (bad config, broker unreachable)
 * stops the fleet instead, since restarting cannot fix it.
 */
function launch(name: string, main: string, env: Record<string, string>, restarts = 0): ChildProcess {
  const startedAt = Date.now();
  const child = spawn(process.execPath, ['--enable-source-maps', path.join(dist, main)], {
    env: { ...baseEnv, ...env, [SUPERVISOR_ENV]: String(process.pid) },
    stdio: format === 'pretty' ? ['ignore', 'pipe', 'pipe'] : ['ignore', 'inherit', 'inherit'],
  });
  if (format === 'pretty') {
    if (!colours.has(name)) colours.set(name, colours.size);
    const line = prettyLine(name, { width: prefixWidth, colour: colours.get(name) });
    pipeLines(child.stdout!, process.stdout, line);
    pipeLines(child.stderr!, process.stderr, line);
  }
  child.on('exit', (code, signal) => {
    children.splice(children.indexOf(child), 1);
    if (stopping) return;
    if (restarts === 0 && Date.now() - startedAt < FIRST_START_MS) {
      console.error(`postmaster: ${name} failed to start (${signal ?? code}); stopping the fleet`);
      return void stop(1);
    }
    const stable = Date.now() - startedAt > 60_000;
    const next = stable ? 1 : restarts + 1;
    const delay = Math.min(30_000, 1000 * 2 ** (next - 1));
    console.error(`postmaster: ${name} exited (${signal ?? code}); restarting in ${delay / 1000} s`);
    setTimeout(() => {
      if (!stopping) launch(name, main, env, next);
    }, delay);
  });
  children.push(child);
  return child;
}

let stopping = false;
let forced = false;
const alive = () => children.filter((c) => c.exitCode === null && c.signalCode === null);
async function stop(code = 0): Promise<void> {
  if (stopping) return;
  stopping = true;
  await Promise.all(
    alive().map(
      (c) =>
        new Promise<void>((resolve) => {
          // 'close': after the exit and the last of its output.
          c.once('close', () => resolve());
          c.kill('SIGTERM');
        }),
    ),
  );
  process.exit(forced ? 1 : code);
}
/** The first signal stops the fleet gracefully; another, while it stops, makes each service exit at once (its second SIGTERM). */
function onSignal(): void {
  if (!stopping) return void stop(0);
  forced = true;
  for (const c of alive()) c.kill('SIGTERM');
}
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

if (!providerUrl) {
  providerUrl = `http://127.0.0.1:${cfg.simulatorPort}`;
  launch('simulator', 'services/simulator/main.js', { SIMULATOR_PORT: String(cfg.simulatorPort) });
  if (!(await waitForPort(cfg.simulatorPort, '127.0.0.1', 15_000))) {
    console.error('postmaster: the provider simulator did not start');
    await stop(1);
  }
}

/** The n-th metrics port after METRICS_PORT; 0 (ephemeral) stays 0 for every service. */
const metricsPort = (n: number): Record<string, string> => ({ METRICS_PORT: String(cfg.metricsPort === 0 ? 0 : cfg.metricsPort + n) });
const services: ServiceSpec[] = [
  { name: 'ingress', main: 'services/ingress/main.js', replicas: 1, env: () => metricsPort(0) },
  { name: 'dispatcher', main: 'services/dispatcher/main.js', replicas, env: (i) => metricsPort(1 + i) },
  { name: 'sender', main: 'services/sender/main.js', replicas, env: (i) => metricsPort(1 + replicas + i) },
  { name: 'dlq-replayer', main: 'services/dlq-replayer/main.js', replicas: 1, env: () => metricsPort(1 + 2 * replicas) },
];
for (const s of services) {
  if (!existsSync(path.join(dist, s.main))) continue;
  for (let i = 0; i < s.replicas; i++) {
    launch(processName(s.name, i, s.replicas), s.main, { ...s.env(i), PROVIDER_BASE_URL: providerUrl, REPLICA_ID: `${s.name}-${i}` });
  }
}

if (await waitForPort(cfg.ingressPort, '127.0.0.1', 30_000)) {
  const mgmt = cfg.managementUrl || 'http://127.0.0.1:15672';
  console.error(
    [
      '',
      `postmaster: fleet running (${replicas} replica(s) of dispatcher and sender)`,
      `  send a message:   curl -s -X POST http://127.0.0.1:${cfg.ingressPort}/v1/messages \\`,
      `                      -H 'Authorization: Bearer ${cfg.env === 'production' ? '$INGRESS_API_TOKEN' : cfg.ingressApiToken}' -H 'Content-Type: application/json' \\`,
      `                      -d '{"to":"15551234567","type":"text","text":{"body":"hi"}}'`,
      `  provider ledger:  curl -s ${providerUrl}/_sim/ledger`,
      `  management UI:    ${mgmt.replace(/\/\/[^@]*@/, '//')}  (guest/guest), queues under "${cfg.topologyPrefix}."`,
      '  stop:             Ctrl-C',
      '',
    ].join('\n'),
  );
}
