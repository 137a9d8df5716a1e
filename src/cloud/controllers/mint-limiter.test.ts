import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MintLimiter } from './registry-token.js';

describe('MintLimiter', () => {
  it('bounds mints per namespace and in all, and serves a quiet namespace before a busy one', async () => {
    const limiter = new MintLimiter(3, 2);
    const running = new Map<string, number>();
    let peak = 0;
    const peakPer = new Map<string, number>();
    const order: string[] = [];
    const gates: Array<() => void> = [];
    const task = (ns: string) =>
      limiter.run(ns, async () => {
        order.push(ns);
        running.set(ns, (running.get(ns) ?? 0) + 1);
        peakPer.set(ns, Math.max(peakPer.get(ns) ?? 0, running.get(ns)!));
        peak = Math.max(
          peak,
          [...running.values()].reduce((a, b) => a + b, 0),
        );
        await new Promise<void>((resolve) => gates.push(resolve));
        running.set(ns, running.get(ns)! - 1);
      });
    const busy = Array.from({ length: 10 }, () => task('busy'));
    await new Promise((r) => setImmediate(r));
    const quiet = task('quiet');
    const drain = async () => {
      while (gates.length > 0 || limiter.active > 0) {
        gates.shift()?.();
        await new Promise((r) => setImmediate(r));
      }
    };
    await drain();
    await Promise.all([...busy, quiet]);
    assert.equal(peakPer.get('busy'), 2);
    assert.ok(peak <= 3);
    // quiet started right after busy's first two, not behind all ten
    assert.ok(order.indexOf('quiet') <= 2, order.join(','));
  });
});
