"""`python -m lift_jax.absorb` with every JAX compile event over 0.3 s printed (`EVT`: seconds since start, thread,
event, duration, function) and the totals per event (`TOT`) at the end."""
import sys, time, runpy, threading
import jax, jax.monitoring as mon
T0 = time.time()
tot = {}
def on(event, dur, **kw):
    tot[event] = tot.get(event, 0) + dur
    if dur > 0.3:
        print(f"EVT t={time.time()-T0:6.1f} {threading.current_thread().name:>12} {event} {dur:.2f}s {kw}", flush=True)
mon.register_event_duration_secs_listener(on)
try:
    sys.argv = ["lift_jax.absorb"] + sys.argv[1:]
    runpy.run_module("lift_jax.absorb", run_name="__main__")
finally:
    for k, v in sorted(tot.items(), key=lambda x: -x[1])[:12]:
        print("TOT", k, round(v, 1), flush=True)
