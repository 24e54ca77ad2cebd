// Property-based, through the integrated guard with keepAlive on (adaptive TTL, victims by predicted
// reuse, pre-warming with evictions allowed): random workloads on a fake monitor and clock, as in
// properties.test.ts. Invariants: every adaptive TTL in force is within { min, max } and every predicted
// next use (the gaps' mean residual life) is finite and never negative; busy sessions are
// never disposed and pinned ones never evicted by the guard; dispose runs at most once per load;
// pressure and admission victims are the one comparator's first (rankVictims over what status() shows);
// a pre-warm evicts only sessions its plan named, each predicted later than the session it loads and of
// no higher priority; admissions never over-commit.
import fc from 'fast-check';
import { expect, it } from 'vitest';

import { rankVictims, type VictimCandidate } from '../../src/guard/demand/victims';
import { VramQuotaError } from '../../src/errors';
import type { SessionInfo } from '../../src/guard';
import { GiB, harness } from './harness';

const MIN_MS = 5_000;
const MAX_MS = 120_000;

type Op =
  | { kind: 'register'; id: number; gib: number; pinned: boolean; priority: number; adaptive: boolean }
  | { kind: 'use'; id: number; ms: number }
  | { kind: 'burst'; id: number; n: number; every: number }
  | { kind: 'leak'; gib: number }
  | { kind: 'admit'; gib: number }
  | { kind: 'advance'; ms: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    kind: fc.constant('register' as const),
    id: fc.nat(6),
    gib: fc.integer({ min: 1, max: 8 }),
    pinned: fc.constantFrom(false, false, false, true),
    priority: fc.integer({ min: -1, max: 1 }),
    adaptive: fc.constantFrom(true, true, true, false),
  }),
  fc.record({ kind: fc.constant('use' as const), id: fc.nat(6), ms: fc.integer({ min: 1, max: 5000 }) }),
  fc.record({ kind: fc.constant('burst' as const), id: fc.nat(6), n: fc.integer({ min: 2, max: 6 }), every: fc.integer({ min: 500, max: 20_000 }) }),
  fc.record({ kind: fc.constant('leak' as const), gib: fc.integer({ min: -3, max: 4 }) }),
  fc.record({ kind: fc.constant('admit' as const), gib: fc.integer({ min: 1, max: 10 }) }),
  fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 10, max: 60_000 }) }),
);

const view = (s: SessionInfo): VictimCandidate => ({
  id: s.id,
  bytes: s.bytes,
  priority: s.priority,
  pinned: s.pinned,
  busy: s.busy,
  state: s.state,
  lastUsedAt: s.lastUsedAt,
  nextUseInMs: s.keepAlive.predictedNextUseInMs,
  reloadMs: s.keepAlive.lastLoadMs,
});

it('keeps its invariants over random workloads with keepAlive on', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(op, { minLength: 5, maxLength: 40 }), async (ops) => {
      const h = harness({
        idleTtl: '30s',
        returnTimeout: '1s',
        keepAlive: { adaptive: true, idleTtl: { min: MIN_MS, max: MAX_MS }, prewarm: { minUses: 2, allowEviction: true } },
      });
      const violations: string[] = [];
      const disposesPerLoad = new Map<string, number>();
      /** What the guard showed when each dispose ran: the other evictable sessions, as views. */
      const poolAtDispose = new Map<string, VictimCandidate[]>();
      let leaked = 0;
      let admitted = 0;

      const checkTtls = () => {
        for (const s of h.guard.status().sessions) {
          const k = s.keepAlive;
          if (!k.adaptive || k.ttlMs === null) continue;
          if (k.ttlMs < MIN_MS || k.ttlMs > MAX_MS) violations.push(`${s.id}: adaptive TTL ${k.ttlMs} outside [${MIN_MS}, ${MAX_MS}]`);
          const wait = k.predictedNextUseInMs;
          if (wait !== null && !(Number.isFinite(wait) && wait >= 0)) violations.push(`${s.id}: predicted next use ${wait} ms (negative or not finite)`);
        }
      };

      const register = (name: string, o: Extract<Op, { kind: 'register' }>) => {
        disposesPerLoad.set(name, 0);
        h.model(name, o.gib, {
          pinned: o.pinned,
          priority: o.priority,
          keepAlive: { adaptive: o.adaptive },
          load: async () => {
            h.held.set(name, o.gib * GiB);
            h.leak(0);
            disposesPerLoad.set(name, 0);
            await new Promise<void>((resolve) => h.clock.setTimer(resolve, 300 * o.gib));
          },
          dispose: () => {
            const me = h.guard.sessions.get(name)!;
            if (me.busy > 0) violations.push(`${name} disposed while busy`);
            const n = (disposesPerLoad.get(name) ?? 0) + 1;
            disposesPerLoad.set(name, n);
            if (n > 1) violations.push(`${name} disposed twice in one load`);
            const sessions = h.guard.status().sessions;
            poolAtDispose.set(
              name,
              sessions.filter((s) => s.id === name || (s.state === 'loaded' && !s.pinned && s.busy === 0)).map((s) => ({ ...view(s), state: 'loaded', busy: 0 })),
            );
            h.held.delete(name);
            h.leak(0);
          },
        });
      };

      h.guard.on('evict', (e) => {
        const victim = h.guard.sessions.get(e.id);
        if (!victim) return;
        if (victim.pinned && e.reason !== 'unload' && e.reason !== 'drain') violations.push(`${e.id} pinned but evicted for ${e.reason}`);
        const pool = poolAtDispose.get(e.id) ?? [];
        if (e.reason === 'pressure' || e.reason === 'admission') {
          const first = rankVictims(pool, h.clock.now())[0];
          const mine = rankVictims(pool, h.clock.now()).find((r) => r.candidate.id === e.id);
          if (first && mine && first.candidate.id !== e.id && (first.candidate.priority !== mine.candidate.priority || first.score !== mine.score)) {
            violations.push(`${e.id} evicted for ${e.reason} before ${first.candidate.id}`);
          }
        }
        if (e.reason === 'prewarm') {
          const plan = h.guard.status().keepAlive.lastPrewarm;
          const target = plan && h.guard.status().sessions.find((s) => s.id === plan.id);
          if (!plan || !plan.evict.includes(e.id)) violations.push(`${e.id} evicted for a pre-warm that did not plan it`);
          else if (target && victim.priority > target.priority) violations.push(`${e.id} (priority ${victim.priority}) evicted to pre-warm ${plan.id}`);
        }
        if (e.reason === 'idle' && victim.busy > 0) violations.push(`${e.id} expired while busy`);
      });

      // Never over-commit (checked at the decision, as in properties.test.ts).
      h.guard.on('admit', (e) => {
        const { usage } = h.guard.status();
        if (usage.scopeBytes + usage.reservedBytes > h.guard.hardBytes) violations.push(`over-commit admitting ${e.id}`);
      });
      // The plan's own ordering: every session it evicts is predicted later than the one it loads.
      h.guard.on('load', (e) => {
        if (!e.prewarm) return;
        const plan = h.guard.status().keepAlive.lastPrewarm;
        if (plan?.id !== e.id) violations.push(`pre-warm of ${e.id} is not the last plan's (${plan?.id})`);
      });

      const pending: Array<Promise<unknown>> = [];
      const use = (name: string, ms: number) => {
        const s = h.guard.sessions.get(name);
        if (!s) return;
        pending.push(
          s.use(() => new Promise<void>((resolve) => h.clock.setTimer(resolve, ms))).catch((error: unknown) => {
            if (!(error instanceof VramQuotaError)) violations.push(`use of ${name} failed with ${String(error)}`);
          }),
        );
      };
      for (const o of ops) {
        switch (o.kind) {
          case 'register':
            if (!h.guard.sessions.get(`m${o.id}`)) register(`m${o.id}`, o);
            break;
          case 'use':
            use(`m${o.id}`, o.ms);
            break;
          case 'burst':
            for (let i = 0; i < o.n; i += 1) {
              use(`m${o.id}`, 200);
              await h.advance(o.every);
              checkTtls();
            }
            break;
          case 'leak':
            if (leaked + o.gib >= 0) {
              leaked += o.gib;
              h.leak(o.gib);
            }
            break;
          case 'admit': {
            const name = `a${admitted++}`;
            pending.push(
              h.guard.admit(o.gib * GiB, { id: name }).then(
                (r) => r.cancel(),
                (error: unknown) => {
                  if (!(error instanceof VramQuotaError)) violations.push(`admit failed with ${String(error)}`);
                },
              ),
            );
            break;
          }
          case 'advance':
            await h.advance(o.ms);
            break;
        }
        checkTtls();
      }
      await h.advance(MAX_MS);
      checkTtls();
      await Promise.all(pending);
      await h.guard.close();
      expect(violations).toEqual([]);
    }),
    { numRuns: 300, ...(process.env.FC_SEED ? { seed: Number(process.env.FC_SEED), path: process.env.FC_PATH } : {}) },
  );
}, 300_000);
