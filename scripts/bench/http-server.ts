/**
 * The bare HTTP end of the HTTP hop, run as its own process: node:http, reads the body, answers 200
 * with a Cloud API success body. No routing, validation or ledger — the floor under the simulator.
 * Prints its port on stdout; GET answers 200 too (readiness).
 */
import http from 'node:http';

const answer = JSON.stringify({
  messaging_product: 'whatsapp',
  contacts: [{ input: '15550000000', wa_id: '15550000000' }],
  messages: [{ id: 'wamid.HBgLMTU1NTAwMDAwMDAVAgARGBI5QUI2QjA3RjA2RjI0RjA3AA==' }],
});

const server = http.createServer((req, res) => {
  req.on('data', () => {});
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(answer) });
    res.end(answer);
  });
});
server.keepAliveTimeout = 65_000;
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1');
process.once('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
});
