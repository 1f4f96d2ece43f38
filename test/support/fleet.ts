/**
 * The whole pipeline in-process on ephemeral ports: simulator, ingress, dispatcher(s), sender(s).
 */
import { request } from 'undici';
import type { Config } from '../../shared/config.js';
import { startDispatcher, type Dispatcher } from '../../services/dispatcher/service.js';
import { startIngress, type Ingress } from '../../services/ingress/service.js';
import { startSender, type Sender } from '../../services/sender/service.js';
import { startSimulator, type Simulator, type SimulatorOptions } from '../../services/simulator/server.js';
import type { Isolation } from './isolation.js';

export interface Fleet {
  sim: Simulator;
  ingress: Ingress;
  dispatchers: Dispatcher[];
  senders: Sender[];
  cfg: Config;
  send(body: Record<string, unknown>, headers?: Record<string, string>): Promise<{ status: number; body: any; headers: Record<string, unknown> }>;
  close(): Promise<void>;
}

export interface FleetOptions {
  overrides?: Partial<Config>;
  simulator?: SimulatorOptions;
  dispatchers?: number;
  senders?: number;
}

export async function startFleet(iso: Isolation, opts: FleetOptions = {}): Promise<Fleet> {
  const sim = await startSimulator(opts.simulator ?? {});
  const cfg = iso.config({ providerBaseUrl: sim.url, ...opts.overrides });
  const ingress = await startIngress(cfg);
  const dispatchers: Dispatcher[] = [];
  const senders: Sender[] = [];
  for (let i = 0; i < (opts.dispatchers ?? 1); i++) dispatchers.push(await startDispatcher({ ...cfg, replicaId: `dispatcher-${i}` }));
  for (let i = 0; i < (opts.senders ?? 1); i++) senders.push(await startSender({ ...cfg, replicaId: `sender-${i}` }));
  return {
    sim,
    ingress,
    dispatchers,
    senders,
    cfg,
    async send(body, headers = {}) {
      const res = await request(`${ingress.url}/v1/messages`, {
        method: 'POST',
        headers: { authorization: `Bearer ${cfg.ingressApiToken}`, 'content-type': 'application/json', ...headers },
        body: JSON.stringify(body),
      });
      const text = await res.body.text();
      return { status: res.statusCode, body: text ? JSON.parse(text) : null, headers: res.headers };
    },
    async close() {
      await ingress.close();
      await Promise.all(dispatchers.map((d) => d.close()));
      await Promise.all(senders.map((s) => s.close()));
      await sim.close();
    },
  };
}
