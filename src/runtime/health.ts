import { createServer, type Server } from 'node:http';

export interface HealthSource {
  ready(): boolean;
  /** What /readyz says while not ready (default: caches not synced). */
  notReadyReason?(): string;
  metrics(): string;
}

/** /healthz (process up), /readyz (caches synced) and /metrics (Prometheus text). */
export function startHealthServer(port: number, host: string, source: HealthSource): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz' || path === '/livez') {
      res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok');
    } else if (path === '/readyz') {
      const ready = source.ready();
      res
        .writeHead(ready ? 200 : 503, { 'Content-Type': 'text/plain' })
        .end(ready ? 'ok' : (source.notReadyReason?.() ?? 'caches not synced'));
    } else if (path === '/metrics') {
      res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4' }).end(source.metrics());
    } else {
      res.writeHead(404).end();
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}
