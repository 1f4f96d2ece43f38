/**
 * A bot handler (a real HTTP server) that never answers one text, so the dispatcher handling it can
 * be killed mid-delivery as a crash would; every other inbound message gets one "ok" reply.
 */
import http from 'node:http';

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
