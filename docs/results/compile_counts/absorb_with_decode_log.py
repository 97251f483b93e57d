import sys, time, runpy
import jax, numpy as np
import lift_jax.sampling as S
orig = S._decode
calls = []
seen = set()
T0 = time.time()
def wrapped(graphdef, state, prefix, tokens, positions, source, cell_positions, segments, last, *a, **kw):
    key = (prefix.shape[0], tokens.shape[0], source.shape, kw["slots"], kw["max_new_tokens"], kw["logprob_k"])
    t = time.perf_counter()
    out = orig(graphdef, state, prefix, tokens, positions, source, cell_positions, segments, last, *a, **kw)
    jax.block_until_ready(out)
    dt = time.perf_counter() - t
    calls.append(dict(at=round(time.time()-T0,1), shape=str(key), new=key not in seen, s=round(dt, 2)))
    seen.add(key)
    print("DECODE", calls[-1], flush=True)
    return out
S._decode = wrapped
try:
    sys.argv = ["lift_jax.absorb"] + sys.argv[1:]
    runpy.run_module("lift_jax.absorb", run_name="__main__")
finally:
    print("SUMMARY calls", len(calls), "distinct", len(seen), "compile-call s", round(sum(c["s"] for c in calls if c["new"]),1), "rest", round(sum(c["s"] for c in calls if not c["new"]),1), flush=True)
