/**
 * The bench's provider, run as its own process: a bare node:http server shaped like the Cloud API.
 * Every POST outside `/_ledger` is a send: the body is parsed, the send is noted (arrival time and
 * `biz_opaque_callback_data`, the sender's message id) and answered 200 with a Cloud API success
 * body and a wamid of its own. No routing, validation, limits or faults: the floor under any
 * provider, and the same one for the HTTP hop, the peers and the pipeline, so their figures share
 * it. Deliveries are counted here, whatever path a message took to get here.
 *
 * Control surface (read by ledger.ts): `GET /_ledger/stats`, `GET /_ledger/entries?after=&limit=`,
 * `POST /_ledger/reset`. `GET /` answers 200 (readiness).
 */
import http from 'node:http';

/** Arrival times and message ids in arrival order (seq = index + 1); `seen` finds duplicates. */
let receivedAt: number[] = [];
let ids: Array<string | null> = [];
let seen = new Set<string>();
let duplicates = 0;

function note(id: string | null): number {
  receivedAt.push(Date.now());
  ids.push(id);
  if (id !== null) {
    if (seen.has(id)) duplicates++;
    else seen.add(id);
  }
  return ids.length;
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function answerSend(raw: string, res: http.ServerResponse): void {
  let req: { to?: unknown; biz_opaque_callback_data?: unknown };
  try {
    req = JSON.parse(raw) as typeof req;
  } catch {
    return send(res, 400, { error: { message: 'Invalid JSON', type: 'OAuthException', code: 100 } });
  }
  const to = typeof req.to === 'string' ? req.to : '';
  const seq = note(typeof req.biz_opaque_callback_data === 'string' ? req.biz_opaque_callback_data : null);
  send(res, 200, { messaging_product: 'whatsapp', contacts: [{ input: to, wa_id: to }], messages: [{ id: `wamid.bench${seq.toString(36)}` }] });
}

function control(url: URL, method: string, res: http.ServerResponse): void {
  if (method === 'GET' && url.pathname === '/_ledger/stats') {
    return send(res, 200, { received: ids.length, delivered: seen.size, duplicates });
  }
  if (method === 'GET' && url.pathname === '/_ledger/entries') {
    const after = Number(url.searchParams.get('after') ?? 0);
    const limit = Number(url.searchParams.get('limit') ?? 10_000);
    const end = Math.min(ids.length, after + limit);
    const entries = [];
    for (let i = after; i < end; i++) entries.push({ seq: i + 1, receivedAt: receivedAt[i], id: ids[i] });
    return send(res, 200, { entries });
  }
  if (method === 'POST' && url.pathname === '/_ledger/reset') {
    receivedAt = [];
    ids = [];
    seen = new Set();
    duplicates = 0;
    return send(res, 200, { reset: true });
  }
  send(res, 404, { error: `no ${method} ${url.pathname}` });
}

const server = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const url = req.url ?? '/';
    if (url.startsWith('/_ledger')) return control(new URL(url, 'http://x'), req.method ?? 'GET', res);
    if (req.method === 'POST') return answerSend(Buffer.concat(chunks).toString('utf8'), res);
    send(res, 200, { ok: true });
  });
});
server.keepAliveTimeout = 65_000;
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1');
process.once('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
});
