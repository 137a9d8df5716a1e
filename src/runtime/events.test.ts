import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EventRecorder } from './events.js';
import type { KubeClient } from './kube-client.js';
import { silentLogger } from './logger.js';

test('drain waits for the Events being written, failed ones included, so stop closes the client after them', async () => {
  const answers: Array<() => void> = [];
  const client = {
    writesAllowed: () => true,
    create: () =>
      new Promise((resolve, reject) =>
        answers.push(answers.length === 0 ? () => resolve({}) : () => reject(new Error('gone'))),
      ),
  } as unknown as KubeClient;
  const recorder = new EventRecorder(client, silentLogger);
  const cm = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { namespace: 'ns', name: 'x', uid: 'u' } };
  recorder.event(cm, 'Warning', 'One', 'first');
  recorder.event(cm, 'Warning', 'Two', 'second');
  let drained = false;
  const drain = recorder.drain().then(() => (drained = true));
  await new Promise((r) => setImmediate(r));
  assert.equal(drained, false, 'two Events still in flight');
  answers[0]!();
  await new Promise((r) => setImmediate(r));
  assert.equal(drained, false, 'one Event still in flight');
  answers[1]!();
  await drain;
  assert.equal(drained, true);
  await recorder.drain();
});
