// Property-based: thousands of random workloads against the guard on a fake monitor and clock.
// Invariants: busy and pinned sessions are never evicted by the guard; dispose runs at most once per
// load; pressure and admission victims come in the documented order; admissions never over-commit.
import fc from 'fast-check';
import { expect, it } from 'vitest';

import { VramQuotaError } from '../../src/errors';
import type { Reservation } from '../../src/guard';
import { GiB, harness } from './harness';

type Op =
  | { kind: 'register'; id: number; gib: number; pinned: boolean; priority: number }
  | { kind: 'use'; id: number; ms: number }
  | { kind: 'leak'; gib: number }
  | { kind: 'admit'; gib: number; commit: boolean }
  | { kind: 'advance'; ms: number }
  | { kind: 'unload'; id: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('register' as const), id: fc.nat(7), gib: fc.integer({ min: 1, max: 8 }), pinned: fc.boolean(), priority: fc.integer({ min: -1, max: 1 }) }),
  fc.record({ kind: fc.constant('use' as const), id: fc.nat(7), ms: fc.integer({ min: 1, max: 5000 }) }),
  fc.record({ kind: fc.constant('leak' as const), gib: fc.integer({ min: -3, max: 4 }) }),
  fc.record({ kind: fc.constant('admit' as const), gib: fc.integer({ min: 1, max: 10 }), commit: fc.boolean() }),
  fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 10, max: 20_000 }) }),
  fc.record({ kind: fc.constant('unload' as const), id: fc.nat(7) }),
);

it('keeps its invariants over random workloads', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(op, { minLength: 5, maxLength: 40 }), async (ops) => {
      const h = harness({ idleTtl: '30s', returnTimeout: '1s' });
      const violations: string[] = [];
      const disposesPerLoad = new Map<string, number>();
      const candidatesAtDispose = new Map<string, Array<{ id: string; priority: number; lastUsedAt: number; bytes: number }>>();
      let leaked = 0;
      let admitted = 0;

      const register = (name: string, gib: number, pinned: boolean, priority: number) => {
        disposesPerLoad.set(name, 0);
        const session = h.model(name, gib, {
          pinned,
          priority,
          dispose: () => {
            const s = h.guard.sessions.get(name)!;
            if (s.busy > 0) violations.push(`${name} disposed while busy`);
            const n = (disposesPerLoad.get(name) ?? 0) + 1;
            disposesPerLoad.set(name, n);
            if (n > 1) violations.push(`${name} disposed twice`);
            // Who else could have been chosen at this moment.
            candidatesAtDispose.set(
              name,
              h.guard.sessions
                .list()
                .filter((o) => o.state === 'loaded' && !o.pinned && o.busy === 0)
                .map((o) => ({ id: o.id, priority: o.priority, lastUsedAt: o.lastUsedAt, bytes: o.bytes })),
            );
            h.held.delete(name);
            h.leak(0);
          },
        });
        return session;
      };

      h.guard.on('evict', (e) => {
        const victim = h.guard.sessions.get(e.id)!;
        if (e.reason === 'pressure' || e.reason === 'admission') {
          if (victim.pinned) violations.push(`${e.id} pinned but evicted for ${e.reason}`);
          const me = { priority: victim.priority, lastUsedAt: victim.lastUsedAt, bytes: victim.bytes };
          for (const other of candidatesAtDispose.get(e.id) ?? []) {
            const better =
              other.priority < me.priority ||
              (other.priority === me.priority &&
                (other.lastUsedAt < me.lastUsedAt || (other.lastUsedAt === me.lastUsedAt && other.bytes > me.bytes)));
            if (better) violations.push(`${e.id} evicted before ${other.id}`);
          }
        }
      });

      // Never over-commit: at the moment of each admission, what the guard knows the scope uses plus
      // every outstanding reservation (this one included) fits under the hard limit. (Checked at the
      // decision: usage that appears later, a leak, is pressure for the guard to relieve, not a
      // double-booking.)
      h.guard.on('admit', (e) => {
        const { usage } = h.guard.status();
        if (usage.scopeBytes + usage.reservedBytes > h.guard.hardBytes) {
          violations.push(`over-commit admitting ${e.id}: ${usage.scopeBytes} + ${usage.reservedBytes} > ${h.guard.hardBytes}`);
        }
      });

      const reservations: Reservation[] = [];
      const pendingWork: Array<Promise<unknown>> = [];
      for (const o of ops) {
        switch (o.kind) {
          case 'register': {
            const name = `m${o.id}`;
            const existing = h.guard.sessions.get(name);
            if (!existing) register(name, o.gib, o.pinned, o.priority);
            break;
          }
          case 'use': {
            const s = h.guard.sessions.get(`m${o.id}`);
            if (s && s.state === 'loaded') {
              pendingWork.push(s.use(() => new Promise<void>((resolve) => h.clock.setTimer(resolve, o.ms))).catch(() => undefined));
            }
            break;
          }
          case 'leak':
            if (leaked + o.gib >= 0) {
              leaked += o.gib;
              h.leak(o.gib);
            }
            break;
          case 'admit': {
            const name = `a${admitted++}`;
            pendingWork.push(
              h.guard.admit(o.gib * GiB, { id: name }).then(
                (r) => {
                  if (o.commit) {
                    h.held.set(name, o.gib * GiB);
                    h.leak(0);
                    disposesPerLoad.set(name, 0);
                    r.commit({
                      dispose: () => {
                        h.held.delete(name);
                        h.leak(0);
                      },
                    });
                  } else {
                    reservations.push(r);
                  }
                },
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
          case 'unload':
            pendingWork.push(h.guard.sessions.unload(`m${o.id}`));
            break;
        }
        // Cancel uncommitted reservations after a while, as a failed load would.
        if (reservations.length > 2) reservations.shift()!.cancel();
      }
      await h.advance(60_000);
      reservations.forEach((r) => r.cancel());
      await h.advance(60_000);
      await Promise.all(pendingWork);
      await h.guard.close();
      expect(violations).toEqual([]);
    }),
    { numRuns: 1500, ...(process.env.FC_SEED ? { seed: Number(process.env.FC_SEED), path: process.env.FC_PATH } : {}) },
  );
  // Pure CPU: about 40 s on a quiet two-core machine, six minutes beside four busy loops and the rest of
  // the suite. The limit only catches a hang.
}, 900_000);
