/**
 * The simulator's own HTTP surface, for tests, benchmarks and operators of the local fleet:
 * `/healthz` and `/_sim/*` (ledger, faults, stats, reset). Never delayed by simulated latency and
 * never reset by `down`, so an outage can be switched off over HTTP.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SimulatorCore } from './core.js';
import { faultPatchSchema, type FaultConfig } from './faults.js';
import { parseJson, readBody, sendJson } from './http-io.js';

const MAX_CONTROL_BODY = 1024 * 1024;

/** Answers a control route; returns false when `url` is not one. */
export async function handleControl(core: SimulatorCore, req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> {
  const route = `${req.method} ${url.pathname}`;
  switch (route) {
    case 'GET /healthz':
      sendJson(res, 200, { status: 'ok', down: core.faults.isDown });
      return true;
    case 'GET /_sim/ledger':
      sendLedger(core, res, url.searchParams);
      return true;
    case 'DELETE /_sim/ledger':
      core.ledger.clear();
      res.writeHead(204).end();
      return true;
    case 'GET /_sim/faults':
      sendJson(res, 200, core.faults.current);
      return true;
    case 'PUT /_sim/faults':
      await putFaults(core, req, res);
      return true;
    case 'GET /_sim/stats':
      sendJson(res, 200, core.stats());
      return true;
    case 'POST /_sim/reset':
      core.reset();
      res.writeHead(204).end();
      return true;
    default:
      return false;
  }
}

function sendLedger(core: SimulatorCore, res: ServerResponse, query: URLSearchParams): void {
  const flag = query.get('accepted');
  const number = (name: string): number | undefined => {
    const value = query.get(name);
    return value === null || value === '' || !Number.isFinite(Number(value)) ? undefined : Number(value);
  };
  const entries = core.ledger.entries({
    to: query.get('to') ?? undefined,
    accepted: flag === null || flag === '' ? undefined : flag === '1' || flag === 'true',
    after: number('after'),
    limit: number('limit'),
  });
  sendJson(res, 200, { entries });
}

async function putFaults(core: SimulatorCore, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const raw = await readBody(req, MAX_CONTROL_BODY).catch(() => null);
  const parsed = raw === null ? null : faultPatchSchema.safeParse(parseJson(raw));
  if (!parsed?.success) {
    const issues = parsed?.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`) ?? ['body too large'];
    sendJson(res, 400, { error: { message: `invalid fault patch: ${issues.join('; ')}` } });
    return;
  }
  core.faults.set(parsed.data as Partial<FaultConfig>);
  sendJson(res, 200, core.faults.current);
}
