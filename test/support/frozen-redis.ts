/**
 * Redis failures that leave the TCP connection up: a server that accepts connections and never
 * answers, and a proxy to the real Redis that can freeze (hold every byte both ways, like a Redis
 * stopped with SIGSTOP) and thaw again — or go away altogether (refuse connections, like a Redis
 * that is down) and come back on the same port.
 */
import net from 'node:net';

export interface FakeRedis {
  url: string;
  /** Connections accepted so far. */
  connections(): number;
  close(): Promise<void>;
}

function track(server: net.Server, sockets: Set<net.Socket>): void {
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
  });
}

async function listen(server: net.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return (server.address() as net.AddressInfo).port;
}

function closer(server: net.Server, sockets: Set<net.Socket>): () => Promise<void> {
  return () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
}

/** Accepts every connection, reads what it is sent, never writes a byte. */
export async function silentRedis(): Promise<FakeRedis> {
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  const server = net.createServer((s) => {
    accepted++;
    s.resume();
  });
  track(server, sockets);
  const port = await listen(server);
  return { url: `redis://127.0.0.1:${port}`, connections: () => accepted, close: closer(server, sockets) };
}

export interface FreezableRedis extends FakeRedis {
  /** From now on nothing passes either way; what was sent waits in the sockets' buffers. */
  freeze(): void;
  /** Lets everything held through, in order (Redis answers what it was sent while frozen). */
  thaw(): void;
  /** Drops every connection and stops listening: connecting is refused (ECONNREFUSED). */
  stop(): Promise<void>;
  /** Listens on the same port again. */
  start(): Promise<void>;
}

/** A proxy to `target` (host:port of a real Redis). */
export async function freezableRedis(targetUrl: string): Promise<FreezableRedis> {
  const target = new URL(targetUrl);
  const sockets = new Set<net.Socket>();
  const pairs = new Set<[net.Socket, net.Socket]>();
  let frozen = false;
  let accepted = 0;
  const server = net.createServer((client) => {
    accepted++;
    const upstream = net.connect(Number(target.port || 6379), target.hostname);
    upstream.on('error', () => client.destroy());
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    // Paused sockets stop reading: bytes stay queued instead of being dropped, so the replies keep
    // matching the commands once thawed.
    client.on('data', (d) => upstream.write(d));
    upstream.on('data', (d) => client.write(d));
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    const pair: [net.Socket, net.Socket] = [client, upstream];
    pairs.add(pair);
    client.on('close', () => pairs.delete(pair));
    if (frozen) pair.forEach((s) => s.pause());
  });
  track(server, sockets);
  const port = await listen(server);
  return {
    url: `redis://127.0.0.1:${port}`,
    connections: () => accepted,
    freeze() {
      frozen = true;
      for (const pair of pairs) pair.forEach((s) => s.pause());
    },
    thaw() {
      frozen = false;
      for (const pair of pairs) pair.forEach((s) => s.resume());
    },
    stop: closer(server, sockets),
    start: () => new Promise<void>((resolve) => server.listen(port, '127.0.0.1', () => resolve())),
    close: () => (server.listening ? closer(server, sockets)() : Promise.resolve()),
  };
}
