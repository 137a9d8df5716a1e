// A replica that does not lead writes nothing: the client refuses every
// request but a read before it is sent, and Events are dropped quietly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EventRecorder } from './events.js';
import { NotLeaderError } from './kube-client.js';
import { silentLogger } from './logger.js';
import { plainHttpClient, ConfigMaps } from './test-clients.js';

test('with writes guarded, only reads reach the API server while the guard says no', async () => {
  const seen: string[] = [];
  const server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' } }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const client = await plainHttpClient(`http://127.0.0.1:${port}`);
  try {
    let leading = false;
    client.guardWrites(() => leading);
    const cm = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { namespace: 'ns', name: 'x' } };
    await client.get(ConfigMaps, 'ns', 'x');
    await assert.rejects(client.create(ConfigMaps, cm), NotLeaderError);
    await assert.rejects(
      client.mergePatch(ConfigMaps, 'ns', 'x', {}),
      /not the leader: PATCH \/api\/v1\/namespaces\/ns\/configmaps\/x refused/,
    );
    await assert.rejects(client.delete(ConfigMaps, 'ns', 'x'), NotLeaderError);
    new EventRecorder(client, silentLogger).event(cm, 'Warning', 'Test', 'dropped');
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(seen, ['GET /api/v1/namespaces/ns/configmaps/x']);
    leading = true;
    await client.create(ConfigMaps, cm);
    new EventRecorder(client, silentLogger).event(cm, 'Warning', 'Test', 'written');
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(seen.slice(1), [
      'POST /api/v1/namespaces/ns/configmaps',
      'POST /api/v1/namespaces/ns/events',
    ]);
  } finally {
    client.close();
    server.close();
  }
});
