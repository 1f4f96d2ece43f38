/**
 * The simulator's own HTTP surface, for tests, benchmarks and operators of the local fleet:
 * `/healthz` and `/_sim/*` (ledger, faults, stats, reset, customer-service windows, clock, inbound
 * messages). Never delayed by simulated latency and
 * never reset by `down`, so an outage can be switched off over HTTP.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import type { SimulatorCore } from './core.js';
import { faultPatchSchema, type FaultConfig } from './faults.js';
import { parseJson, readBody, sendJson } from './http-io.js';
import { postInbound } from './windows.js';

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
    case 'GET /_sim/windows':
      sendWindows(core, res);
      return true;
    case 'PUT /_sim/windows':
      await withBody(req, res, z.object({ enforce: z.boolean() }).strict(), 'window settings', (b) => {
        core.windows.enforce = b.enforce;
        sendWindows(core, res);
      });
      return true;
    case 'POST /_sim/windows':
      await withBody(req, res, windowOpening, 'window', (b) => {
        core.windows.open(b.user, b.at ?? core.now(), b.phoneNumberId);
        sendWindows(core, res);
      });
      return true;
    case 'POST /_sim/clock':
      await withBody(req, res, z.object({ advanceMs: z.number().int().min(0) }).strict(), 'clock move', (b) =>
        sendJson(res, 200, { now: core.advanceClock(b.advanceMs) }),
      );
      return true;
    case 'POST /_sim/inbound':
      await withBody(req, res, inbound, 'inbound message', (b) => sendInbound(core, res, b));
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
  await withBody(req, res, faultPatchSchema, 'fault patch', (patch) => {
    core.faults.set(patch as Partial<FaultConfig>);
    sendJson(res, 200, core.faults.current);
  });
}

/** Reads and validates a JSON body, answering 400 (naming every bad field) when it is not one. */
async function withBody<T>(req: IncomingMessage, res: ServerResponse, schema: z.ZodType<T>, what: string, then: (body: T) => unknown): Promise<void> {
  const raw = await readBody(req, MAX_CONTROL_BODY).catch(() => null);
  const parsed = raw === null ? null : schema.safeParse(parseJson(raw));
  if (!parsed?.success) {
    const issues = parsed?.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`) ?? ['body too large'];
    sendJson(res, 400, { error: { message: `invalid ${what}: ${issues.join('; ')}` } });
    return;
  }
  await then(parsed.data);
}

const windowOpening = z.object({ user: z.string().min(1), phoneNumberId: z.string().min(1).optional(), at: z.number().optional() }).strict();
const inbound = z
  .object({ from: z.string().regex(/^\d{6,20}$/), text: z.string().min(1).default('hello'), phoneNumberId: z.string().min(1).optional() })
  .strict();

function sendWindows(core: SimulatorCore, res: ServerResponse): void {
  sendJson(res, 200, { enforce: core.windows.enforce, now: core.now(), windows: core.windows.list() });
}

/**
 * The user writes: their window opens now (simulator clock) and, when the simulator posts webhooks,
 * a signed inbound message webhook goes to the webhook URL (the ingress), as Meta would post it.
 */
async function sendInbound(core: SimulatorCore, res: ServerResponse, b: z.infer<typeof inbound>): Promise<void> {
  const at = core.now();
  const phoneNumberId = b.phoneNumberId ?? core.options.phoneNumberId ?? '100000000000001';
  core.windows.open(b.from, at, phoneNumberId);
  const hook = core.options.webhook;
  const wamid = `wamid.SIMIN${at.toString(36)}${Math.random().toString(36).slice(2, 8)}`;
  const posted = hook
    ? await postInbound({ url: hook.url, appSecret: hook.appSecret, phoneNumberId, from: b.from, text: b.text, at, wamid }).catch(() => null)
    : null;
  sendJson(res, 200, { wamid, at, phoneNumberId, webhookStatus: posted });
}
