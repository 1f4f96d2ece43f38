/**
 * What the peers' processes share: the HTTP ingress a user would put in front of a queue (express,
 * a bearer token, the batch form of POST /v1/messages/batch answered as Postmaster answers it, so
 * the bench's load generator drives both), and the Cloud API call their consumers make (a
 * keep-alive undici pool). Each peer process is a few lines on top of these.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import express from 'express';
import { Pool } from 'undici';

/** One message as a peer carries it through its queue. */
export interface PeerJob {
  id: string;
  to: string;
  body: string;
}

export function env(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`peer: ${name} is not set`);
  return v;
}

/**
 * Serves POST /v1/messages/batch on PORT: valid items get an id and go to `enqueue` together; the
 * answer is 202 once `enqueue` resolved (the queue has them), 503 if it threw. GET /healthz: 200.
 */
export function serveIngress(enqueue: (jobs: PeerJob[]) => Promise<void>): http.Server {
  const token = `Bearer ${env('TOKEN')}`;
  const app = express();
  app.use(express.json({ limit: '1mb' }));
  app.get('/healthz', (_req, res) => void res.send('ok'));
  app.post('/v1/messages/batch', async (req, res) => {
    if (req.get('authorization') !== token) return void res.status(401).json({ error: 'unauthorized' });
    const items: unknown[] = Array.isArray(req.body?.messages) ? req.body.messages : [];
    const results: Array<{ index: number; status: number; id?: string; error?: string }> = [];
    const jobs: PeerJob[] = [];
    items.forEach((m, index) => {
      const { to, text } = (m ?? {}) as { to?: unknown; text?: { body?: unknown } };
      if (typeof to !== 'string' || typeof text?.body !== 'string') return void results.push({ index, status: 400, error: 'to and text.body are required' });
      const job = { id: randomUUID(), to, body: text.body };
      jobs.push(job);
      results.push({ index, status: 202, id: job.id });
    });
    try {
      await enqueue(jobs);
      res.status(202).json({ results });
    } catch (err) {
      res.status(503).json({ error: (err as Error).message });
    }
  });
  return app.listen(Number(env('PORT')), '127.0.0.1');
}

/** Posts a job's Cloud API request to PROVIDER_URL over `connections` keep-alive connections; throws unless 200. */
export function cloudApiSender(connections: number): { send(job: PeerJob): Promise<void>; close(): Promise<void> } {
  const pool = new Pool(env('PROVIDER_URL'), { connections, keepAliveTimeout: 30_000 });
  const headers = { authorization: 'Bearer peer', 'content-type': 'application/json' };
  return {
    async send(job) {
      const body = JSON.stringify({
        messaging_product: 'whatsapp',
        recipient_type: 'individual',
        to: job.to,
        type: 'text',
        text: { body: job.body },
        biz_opaque_callback_data: job.id,
      });
      const res = await pool.request({ method: 'POST', path: '/v21.0/100000000000001/messages', headers, body });
      await res.body.json();
      if (res.statusCode !== 200) throw new Error(`provider answered ${res.statusCode}`);
    },
    close: () => pool.close(),
  };
}

/** GET anything on PORT answers 200: a consumer process's readiness, once it consumes. */
export function serveReady(): http.Server {
  return http.createServer((_req, res) => res.end('ok')).listen(Number(env('PORT')), '127.0.0.1');
}

/** On SIGTERM: stop serving, run `close`, exit. */
export function onSigterm(server: http.Server, close: () => Promise<unknown>): void {
  process.once('SIGTERM', () => {
    server.close();
    server.closeAllConnections();
    void close()
      .catch(() => {})
      .then(() => process.exit(0));
  });
}
