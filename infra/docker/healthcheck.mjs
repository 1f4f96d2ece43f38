// Docker HEALTHCHECK of the Postmaster image. One image runs any service and each answers /healthz
// on its own port — the ingress on INGRESS_PORT, the workers on METRICS_PORT, the simulator on
// SIMULATOR_PORT — and a HEALTHCHECK runs outside the service's process, unaware of which one was
// started. A container runs a single service, so it is healthy when one of those ports answers
// 200. HEALTHCHECK_PORT pins the port when that guess is not wanted. Plain node, no curl needed.
import http from 'node:http';

const env = process.env;
const ports = env.HEALTHCHECK_PORT
  ? [env.HEALTHCHECK_PORT]
  : [...new Set([env.INGRESS_PORT || '8080', env.METRICS_PORT || '9464', env.SIMULATOR_PORT || '9090'])];
const timeoutMs = Number(env.HEALTHCHECK_TIMEOUT_MS || 3000);

function healthy(port) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port: Number(port), path: '/healthz', timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

const results = await Promise.all(ports.map(healthy));
process.exit(results.some(Boolean) ? 0 : 1);
