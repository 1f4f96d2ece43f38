/**
 * A bot handler (a real HTTP server) that never answers one text, so the dispatcher handling it can
 * be killed mid-delivery as a crash would; every other inbound message gets one "ok" reply. And the
 * crash rounds the poison tests run against it.
 */
import http from 'node:http';
import type { Config } from '../../shared/platform/config.js';
import { drainQueue, type DeadLetter } from '../../scripts/lib/dlq.js';
import { spawnService, type ServiceProcess } from './processes.js';
import { waitFor } from './wait.js';

export interface HangingBot {
  url: string;
  /** Envelope ids of every event it was handed, in arrival order. */
  seen: string[];
  close(): Promise<void>;
}

export async function startHangingBot(poisonText: string): Promise<HangingBot> {
  const seen: string[] = [];
  const bot = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (c) => (raw += c));
    req.on('end', () => {
      const event = JSON.parse(raw);
      seen.push(event.id);
      if (event.message?.text?.body === poisonText) return; // hangs: the consumer dies while handling it
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ replies: [{ type: 'text', text: { body: 'ok' } }] }));
    });
  });
  await new Promise<void>((r) => bot.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(bot.address() as { port: number }).port}`,
    seen,
    close: async () => {
      bot.closeAllConnections();
      await new Promise((r) => bot.close(r));
    },
  };
}

export interface CrashRounds {
  kills: number;
  dead: DeadLetter[];
  /** The dispatcher of the last round (still running when the message was dead-lettered). */
  dispatcher: ServiceProcess | null;
}

/**
 * Rounds of: a dispatcher takes `messageId`, hangs in `bot`, and is killed, as a crash would —
 * until the message shows up in the DLQ (what the rounds then return) or after `maxKills` kills.
 */
export async function crashUntilDeadLettered(o: {
  bot: HangingBot;
  messageId: string;
  cfg: Config;
  amqpUrl: string;
  dlq: string;
  maxKills?: number;
}): Promise<CrashRounds> {
  const r: CrashRounds = { kills: 0, dead: [], dispatcher: null };
  const handled = () => o.bot.seen.filter((id) => id === o.messageId).length;
  while (r.dead.length === 0 && r.kills < (o.maxKills ?? 6)) {
    const before = handled();
    r.dispatcher = await spawnService('dispatcher', o.cfg, { replicaId: `dispatcher-${r.kills}`, logLevel: 'warn' });
    const outcome = await waitFor(
      async () => {
        if (handled() > before) return 'handled';
        const d = await drainQueue(o.amqpUrl, o.dlq);
        r.dead.push(...d);
        return d.length ? 'dead' : null;
      },
      { timeoutMs: 20_000, intervalMs: 100, what: 'the poison at the bot or in the DLQ' },
    );
    if (outcome === 'handled') {
      await r.dispatcher.kill();
      r.kills++;
    }
  }
  return r;
}
