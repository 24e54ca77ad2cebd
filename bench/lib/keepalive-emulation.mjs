// The demand model (src/guard/demand) driven from outside the guard, through its public API only, as a
// preview of the integrated adaptive policy until the guard takes a `keepAlive` option: the guard runs
// with no idle TTL of its own; this module expires sessions at their adaptive TTL (sessions.unload),
// makes room for a load by evicting the victim the reuse scorer picks (so admission rarely has to pick
// one least-recently-used), and pre-warms evicted sessions through sessions.use with an empty function
// (a reload through admission). The integrated policy decides inside the guard instead; its figures
// replace these in the benchmark's adaptive column.

/**
 * demand: the module dist/cjs/guard/demand; models: the trace's models; heldBytes(): what the fake GPU
 * holds now. Returns hooks for the replay.
 */
export function emulateKeepAlive({ demand, guard, clock, heldBytes, ttl, prewarm }) {
  const { SessionDemand, adaptiveIdleTtl, pickVictim, planPrewarm } = demand;
  const perSession = new Map();
  const tokens = new Map();
  const making = new Map();
  const stats = { ttlExpiries: 0, scoredEvictions: 0, prewarms: 0 };
  const of = (id) => {
    let d = perSession.get(id);
    if (!d) perSession.set(id, (d = new SessionDemand()));
    return d;
  };
  const usageRatio = () => heldBytes() / guard.softBytes;
  const views = (now) =>
    guard.sessions.list().map((s) => {
      const e = of(s.id).estimate(now);
      return { ...s, nextUseInMs: e.nextUseInMs, reloadMs: e.lastLoadMs };
    });
  const armTtl = (id) => {
    const now = clock.now();
    const token = (tokens.get(id) ?? 0) + 1;
    tokens.set(id, token);
    const decision = adaptiveIdleTtl({ estimate: of(id).estimate(now), bounds: ttl, fallbackMs: ttl.fallbackMs, usageRatio: usageRatio() });
    clock.setTimer(() => {
      if (tokens.get(id) !== token) return;
      const s = guard.sessions.get(id);
      if (!s || s.state !== 'loaded' || s.busy > 0) return;
      stats.ttlExpiries += 1;
      void guard.sessions.unload(id);
    }, decision.ttlMs);
  };
  const hooks = {
    stats,
    requestStarted(id, t) {
      of(id).useStarted(t);
      tokens.set(id, (tokens.get(id) ?? 0) + 1);
    },
    useEnded(id, t) {
      of(id).useEnded(t);
      if (guard.sessions.get(id)?.busy === 0) armTtl(id);
    },
    loadMeasured(id, ms) {
      of(id).loadMeasured(ms);
    },
    /** Before a request's load: room for it, once per load (concurrent requests share it). */
    makeRoomFor(id, bytes) {
      const state = guard.sessions.get(id)?.state;
      if (state !== undefined && state !== 'evicted') return undefined;
      let p = making.get(id);
      if (!p) {
        p = hooks.makeRoom(bytes).finally(() => making.delete(id));
        making.set(id, p);
      }
      return p;
    },
    /** Evicts by predicted reuse until `bytes` fit under the soft limit (relief then has nothing to do). */
    async makeRoom(bytes) {
      for (;;) {
        if (heldBytes() + bytes <= guard.softBytes) return;
        const victim = pickVictim(views(clock.now()), clock.now());
        if (!victim) return;
        stats.scoredEvictions += 1;
        await guard.sessions.unload(victim.id);
      }
    },
    tick() {
      if (!prewarm) return;
      const now = clock.now();
      const candidates = guard.sessions
        .list()
        .filter((s) => s.state === 'evicted')
        .map((s) => {
          const e = of(s.id).estimate(now);
          return { id: s.id, bytes: s.bytes, priority: s.priority, uses: e.uses, nextUseInMs: e.nextUseInMs, reloadMs: e.lastLoadMs };
        });
      const plan = planPrewarm({ now, roomBytes: guard.targetBytes - heldBytes(), candidates, residents: [], leadMs: 1000 });
      for (const load of plan.loads) {
        stats.prewarms += 1;
        guard.sessions
          .use(load.id, () => undefined)
          .then(
            () => armTtl(load.id),
            () => undefined,
          );
      }
    },
  };
  return hooks;
}
