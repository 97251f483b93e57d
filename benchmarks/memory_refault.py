"""What touching freshly allocated memory costs on this machine: back to back, and after the process sat idle.

Allocates and writes `--gb` GB (numpy), frees it, repeats: the first rounds back to back, then each after
`--idle` seconds of sleep. On a VM whose host takes back the memory a guest freed (balloon free-page reporting),
the idle rounds cost far more than the back-to-back ones: the pages come back from the host one fault at a
time. Any benchmark that alternates two processes (train_throughput.py) pays this on every switch; a training
loop running steps back to back does not.

    python benchmarks/memory_refault.py [--gb 2] [--rounds 4] [--idle 10]

Last line: `refault_idle_over_back_to_back=<median idle round / median back-to-back round>`.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from bench_common import save_results


def touch(gb: float) -> float:
    """Seconds to allocate and write `gb` GB, then free it."""
    start = time.perf_counter()
    block = np.ones(int(gb * 2**30) // 8)
    seconds = time.perf_counter() - start
    del block
    return seconds


def main() -> None:
    """Time the rounds, print a table and the ratio line, save the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=4, help="rounds of each kind")
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of sleep before each idle round")
    opts = parser.parse_args()
    touch(opts.gb)  # the process's first touch of that much memory: neither kind
    back_to_back = [touch(opts.gb) for _ in range(opts.rounds)]
    after_idle = []
    for _ in range(opts.rounds):
        time.sleep(opts.idle)
        after_idle.append(touch(opts.gb))
    fast, slow = statistics.median(back_to_back), statistics.median(after_idle)
    table = [
        f"| rounds ({opts.gb:g} GB each) | median s | s per GB |",
        "|---|---|---|",
        f"| back to back | {fast:.3f} | {fast / opts.gb:.3f} |",
        f"| after {opts.idle:g} s idle | {slow:.3f} | {slow / opts.gb:.3f} |",
    ]
    print("\n".join(table))
    print(f"refault_idle_over_back_to_back={slow / fast:.2f}")
    save_results("memory_refault", {"args": vars(opts), "back_to_back": back_to_back, "after_idle": after_idle,
                                    "table": table})


if __name__ == "__main__":
    main()
