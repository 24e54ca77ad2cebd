// Growth after admission and session families: a commit above its reservation and resize() are
// admission decisions (accepted, relieved, or refused with the figures); a child's use is its
// parent's, a parent is never evicted while a child is busy and its children go first; markEvicted()
// takes a session off the books without a dispose; a releaser's returned bytes count on the ledger.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { VramQuotaError } from '../../src/errors';
import { VramGuard } from '../../src/guard';
import type { EvictEvent, GrowEvent, ReleaseEvent } from '../../src/guard/types';
import { decideGrowth, evictable, familyBytes, type Candidate, victimOrder } from '../../src/guard/planner';
import { GiB, harness } from './harness';

/** A guard on its ledger (no NVML): declared bytes are all it sees. */
function ledgerGuard(soft = '10GiB', hard = '12GiB') {
  return new VramGuard({ quota: { soft, hard }, hysteresis: '1GiB', libraryPath: '/nonexistent/libnvidia-ml.so.1' });
}
const noop = () => undefined;

describe('commit above the reservation', () => {
  it('accepts and reports an extra that fits, relieves one over soft, refuses one over hard with the figures', async () => {
    const guard = ledgerGuard();
    const grown: GrowEvent[] = [];
    const evicted: EvictEvent[] = [];
    guard.on('grow', (e) => grown.push(e));
    guard.on('evict', (e) => evicted.push(e));
    try {
      const idle = guard.sessions.register('idle', { bytes: '3GiB', dispose: noop });
      const small = await guard.admit('1GiB', { id: 'small' });
      small.commit({ bytes: '2GiB', dispose: noop });
      expect(grown.at(-1)).toMatchObject({ id: 'small', kind: 'commit', fromBytes: GiB, toBytes: 2 * GiB, outcome: 'accepted', usageAfterBytes: 5 * GiB });

      // 6 GiB on a 1 GiB reservation: 11 GiB on the books, over soft (10), under hard (12): relieve.
      const big = await guard.admit('1GiB', { id: 'big' });
      big.commit({ bytes: '6GiB', dispose: noop });
      expect(grown.at(-1)).toMatchObject({ id: 'big', outcome: 'relieve', usageAfterBytes: 11 * GiB });
      await expect.poll(() => idle.state).toBe('evicted');
      expect(evicted.map((e) => [e.id, e.reason])).toContainEqual(['idle', 'pressure']);

      // 20 GiB on a 1 GiB reservation cannot fit even after evicting everything idle: refused.
      const huge = await guard.admit('1GiB', { id: 'huge' });
      let error: unknown;
      try {
        huge.commit({ bytes: '20GiB', dispose: noop });
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(VramQuotaError);
      expect((error as VramQuotaError).neededBytes).toBe(19 * GiB);
      expect((error as Error).message).toMatch(/commit above its reservation .* larger than the hard limit/);
      expect(huge.active).toBe(true); // nothing booked: the caller cancels and gives the memory back
      expect(guard.sessions.has('huge')).toBe(false);
      huge.cancel();
      expect(grown.at(-1)).toMatchObject({ id: 'huge', outcome: 'refused' });
    } finally {
      await guard.close();
    }
  });

  it('with NVML, a load the reading already shows is not counted twice', async () => {
    const h = harness({ quota: { soft: '20GiB', hard: '22GiB' } });
    try {
      await h.advance(100);
      const r = await h.guard.admit('4GiB', { id: 'm' });
      h.held.set('m', 8 * GiB); // the load took 8 GiB, and NVML shows it
      h.leak(0);
      await h.advance(100);
      const grown: GrowEvent[] = [];
      h.guard.on('grow', (e) => grown.push(e));
      r.commit({ bytes: '8GiB', dispose: noop });
      expect(grown[0]).toMatchObject({ outcome: 'accepted', usageAfterBytes: 8 * GiB, freeAfterBytes: 14 * GiB });
      expect(h.guard.status().usage.reservedBytes).toBe(0);
    } finally {
      await h.guard.close();
    }
  });
});

describe('resize', () => {
  it('books growth that fits, relieves growth over soft (resolving after), refuses growth over hard unchanged', async () => {
    const guard = ledgerGuard();
    const grown: GrowEvent[] = [];
    guard.on('grow', (e) => grown.push(e));
    try {
      const other = guard.sessions.register('other', { bytes: '4GiB', dispose: noop });
      const s = guard.sessions.register('s', { bytes: '2GiB', dispose: noop });
      await s.resize('3GiB');
      expect(s.bytes).toBe(3 * GiB);
      expect(guard.status().usage.ledgerBytes).toBe(7 * GiB);
      await s.use(async () => {
        await s.resize('7GiB'); // 11 GiB: over soft, relief evicts the idle one before resize resolves
        expect(other.state).toBe('evicted');
      });
      expect(grown.map((e) => e.outcome)).toEqual(['accepted', 'relieve']);
      const refused = await s.resize('13GiB').catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(VramQuotaError);
      expect((refused as VramQuotaError).neededBytes).toBe(6 * GiB);
      expect(s.bytes).toBe(7 * GiB);
      await s.resize('1GiB');
      expect(guard.status().usage.ledgerBytes).toBe(GiB);
      await expect(s.resize('lots')).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    } finally {
      await guard.close();
    }
  });

  it('refuses growth that only evicting its own parent would make room for', async () => {
    const guard = ledgerGuard();
    try {
      guard.sessions.register('model', { bytes: '6GiB', dispose: noop });
      const ctx = guard.sessions.register('ctx', { bytes: '1GiB', dispose: noop, parent: 'model' });
      await expect(ctx.resize('7GiB')).rejects.toBeInstanceOf(VramQuotaError);
    } finally {
      await guard.close();
    }
  });
});

describe('parent and child sessions', () => {
  it("a child's use reloads and marks its parent; evicting the parent disposes the child first", async () => {
    const guard = ledgerGuard();
    const order: string[] = [];
    const events: EvictEvent[] = [];
    guard.on('evict', (e) => events.push(e));
    try {
      const model = guard.sessions.register('model', { bytes: '4GiB', dispose: () => order.push('model'), load: () => order.push('load model') });
      const ctx = guard.sessions.register('ctx', { bytes: '1GiB', dispose: () => order.push('ctx'), load: () => order.push('load ctx'), parent: model });
      expect(model.info().children).toEqual(['ctx']);
      expect(ctx.info().parent).toBe('model');
      await ctx.use(() => {
        expect(model.busy).toBe(1);
        expect(guard.status().sessions.find((s) => s.id === 'model')?.busy).toBe(1);
      });
      expect(model.uses).toBe(1);
      expect(model.lastUsedAt).toBeGreaterThanOrEqual(ctx.lastUsedAt); // the parent's use ends after its child's
      await guard.sessions.unload('model');
      expect(order).toEqual(['ctx', 'model']);
      expect(events.map((e) => [e.id, e.reason])).toEqual([['ctx', 'parent'], ['model', 'unload']]);
      await ctx.use(noop);
      expect(order.slice(2)).toEqual(['load model', 'load ctx']);
      await guard.sessions.delete('model');
      expect(guard.sessions.has('ctx')).toBe(false);
      expect(() => guard.sessions.register('orphan', { bytes: 1, dispose: noop, parent: 'nope' })).toThrow(/parent: session orphan: no session named nope/);
    } finally {
      await guard.close();
    }
  });

  it('blocks a parent whose child is busy or pinned, and says so when an admission cannot fit', async () => {
    const guard = ledgerGuard();
    try {
      const model = guard.sessions.register('model', { bytes: '6GiB', dispose: noop });
      guard.sessions.register('ctx', { bytes: '1GiB', dispose: noop, parent: model, pinned: true });
      const error = await guard.admit('8GiB', { id: 'next' }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(VramQuotaError);
      expect((error as VramQuotaError).eviction.blocked).toContainEqual({ id: 'model', bytes: 6 * GiB, reason: 'child pinned' });
      expect(model.state).toBe('loaded');
    } finally {
      await guard.close();
    }
  });

  it('planner: a parent counts its family bytes and is never a victim while a child is busy', () => {
    const fixed = { nextUseInMs: null, reloadMs: null }; // no demand history: least-recently-used order
    const child = (busy: number): Candidate => ({ id: 'c', bytes: 2, state: 'loaded', busy, pinned: false, priority: 0, lastUsedAt: 0, ...fixed });
    const parent = (c: Candidate): Candidate => ({ id: 'p', bytes: 5, state: 'loaded', busy: 0, pinned: false, priority: 0, lastUsedAt: 0, children: [c], ...fixed });
    const lone: Candidate = { id: 'l', bytes: 6, state: 'loaded', busy: 0, pinned: false, priority: 0, lastUsedAt: 0, ...fixed };
    expect(evictable(parent(child(1)))).toBe(false);
    expect(familyBytes(parent(child(0)))).toBe(7);
    expect(victimOrder([lone, parent(child(0))], 0).map((c) => c.id)).toEqual(['p', 'c', 'l'].filter((id) => id !== 'c'));
    expect(decideGrowth({ familyIds: new Set(['x']), now: 0, growthBytes: 3, freeAfterBytes: -1, usageAfterBytes: 13, softBytes: 10, hardBytes: 12, sessions: [lone] })).toEqual({ kind: 'relieve' });
  });

  it('property: never evicts a parent while a child is busy; children are disposed before their parent', async () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('use' as const), model: fc.nat(2), ctx: fc.nat(2), ms: fc.integer({ min: 1, max: 3000 }) }),
      fc.record({ kind: fc.constant('admit' as const), gib: fc.integer({ min: 1, max: 12 }) }),
      fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 10, max: 8000 }) }),
      fc.record({ kind: fc.constant('unload' as const), model: fc.nat(2) }),
      fc.record({ kind: fc.constant('resize' as const), model: fc.nat(2), ctx: fc.nat(2), gib: fc.integer({ min: 1, max: 4 }) }),
    );
    let parentEvictions = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 4, maxLength: 24 }), async (ops) => {
        const h = harness({ idleTtl: '20s', returnTimeout: '1s' });
        const violations: string[] = [];
        const work: Array<Promise<unknown>> = [];
        const release = (id: string) => {
          h.held.delete(id);
          h.leak(0);
        };
        const hold = (id: string, gib: number) => {
          h.held.set(id, gib * GiB);
          h.leak(0);
        };
        for (let m = 0; m < 3; m += 1) {
          const modelId = `m${m}`;
          hold(modelId, 3);
          const model = h.guard.sessions.register(modelId, {
            bytes: 3 * GiB,
            dispose: () => {
              for (const c of model.children) {
                if (c.busy > 0) violations.push(`${modelId} disposed while ${c.id} busy`);
                if (c.state === 'loaded') violations.push(`${modelId} disposed before its child ${c.id}`);
              }
              release(modelId);
            },
            load: () => hold(modelId, 3),
          });
          for (let c = 0; c < 3; c += 1) {
            const ctxId = `${modelId}c${c}`;
            hold(ctxId, 1);
            h.guard.sessions.register(ctxId, { bytes: GiB, parent: model, dispose: () => release(ctxId), load: () => hold(ctxId, h.guard.sessions.get(ctxId)!.bytes / GiB) });
          }
        }
        h.guard.on('evict', (e) => {
          const s = h.guard.sessions.get(e.id);
          if (s?.parent && s.parent.state === 'evicted') violations.push(`${e.id} evicted after its parent`);
          if (!s?.parent && e.reason !== 'drain') parentEvictions += 1;
        });
        for (const o of ops) {
          const ctx = 'ctx' in o ? h.guard.sessions.get(`m${o.model}c${o.ctx}`) : undefined;
          if (o.kind === 'use' && ctx) work.push(ctx.use(() => new Promise<void>((resolve) => h.clock.setTimer(resolve, o.ms))).catch(() => undefined));
          if (o.kind === 'admit') work.push(h.guard.admit(o.gib * GiB).then((r) => r.cancel(), () => undefined));
          if (o.kind === 'unload') work.push(h.guard.sessions.unload(`m${o.model}`));
          if (o.kind === 'resize' && ctx) work.push(ctx.resize(o.gib * GiB).catch(() => undefined));
          if (o.kind === 'advance') await h.advance(o.ms);
        }
        for (let i = 0; i < 20; i += 1) await h.advance(1000);
        await Promise.all(work);
        await h.guard.close();
        expect(violations).toEqual([]);
      }),
      { numRuns: 40 },
    );
    expect(parentEvictions).toBeGreaterThan(0); // the workloads do reach the case under test
  }, 120_000);
});

describe('markEvicted', () => {
  it('takes a session off the books without dispose, disposes its children, reloads on next use', async () => {
    const guard = ledgerGuard();
    const disposed: string[] = [];
    const events: EvictEvent[] = [];
    guard.on('evict', (e) => events.push(e));
    try {
      const s = guard.sessions.register('remote', { bytes: '4GiB', dispose: () => disposed.push('remote'), load: noop });
      guard.sessions.register('child', { bytes: '1GiB', dispose: () => disposed.push('child'), parent: s });
      expect(await s.markEvicted()).toBe(true);
      expect(disposed).toEqual(['child']);
      expect(events.map((e) => [e.id, e.reason])).toEqual([['child', 'parent'], ['remote', 'external']]);
      expect(guard.status().usage.ledgerBytes).toBe(0);
      expect(await s.markEvicted()).toBe(false);
      await s.use(noop);
      expect(s.state).toBe('loaded');
      expect(s.loads).toBe(2);
    } finally {
      await guard.close();
    }
  });
});

describe('releasers that return the bytes they freed', () => {
  it('on the ledger, relief counts them towards its target and evicts less', async () => {
    const guard = ledgerGuard('10GiB', '20GiB');
    const releases: ReleaseEvent[] = [];
    const evicted: string[] = [];
    guard.on('release', (e) => releases.push(e));
    guard.on('evict', (e) => evicted.push(e.id));
    try {
      guard.sessions.register('a', { bytes: '6GiB', dispose: noop });
      guard.sessions.register('b', { bytes: '3GiB', dispose: noop });
      guard.addReleaser('cache', () => 3 * GiB); // memory the ledger never saw
      guard.sessions.register('c', { bytes: '3GiB', dispose: noop }); // 12 GiB: over soft 10, target 9
      await expect.poll(() => releases.length).toBe(1);
      await expect.poll(() => guard.status().usage.ledgerBytes).toBe(12 * GiB);
      expect(releases[0]).toMatchObject({ name: 'cache', freedBytes: 3 * GiB, usageBeforeBytes: 12 * GiB, usageAfterBytes: 9 * GiB });
      expect(evicted).toEqual([]);
    } finally {
      await guard.close();
    }
  });

  it('does not count twice the bytes its own unloads took off the ledger', async () => {
    const guard = ledgerGuard('10GiB', '20GiB');
    const releases: ReleaseEvent[] = [];
    guard.on('release', (e) => releases.push(e));
    try {
      guard.sessions.register('a', { bytes: '6GiB', dispose: noop });
      const b = guard.sessions.register('b', { bytes: '3GiB', dispose: noop });
      guard.addReleaser('unloads b', async () => {
        await guard.sessions.unload('b');
        return 3 * GiB;
      });
      guard.sessions.register('c', { bytes: '3GiB', dispose: noop });
      await expect.poll(() => releases.length).toBe(1);
      expect(b.state).toBe('evicted');
      expect(releases[0]).toMatchObject({ freedBytes: 3 * GiB, usageBeforeBytes: 12 * GiB, usageAfterBytes: 9 * GiB });
    } finally {
      await guard.close();
    }
  });
});
