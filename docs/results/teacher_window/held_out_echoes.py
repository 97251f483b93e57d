"""Collect the held-out answers of a NIAH grid's `lift+cd` absorbs (each run's timing.json, in the ignored runs/
folder) into the committed `<grid>/held_out_answers.jsonl`, and count the answers that add nothing to their
question (`lift_jax.distill.questions.adds_nothing`: echoes and stubs), the teacher's and the LIFTed model's.

    python docs/results/teacher_window/held_out_echoes.py docs/results/niah docs/results/niah_cd64
"""

import json
import sys
from pathlib import Path

from lift_jax.distill.questions import adds_nothing


def main() -> None:
    for grid in map(Path, sys.argv[1:]):
        out = grid / "held_out_answers.jsonl"
        rows = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
        done = {r["cell"] for r in rows}
        for timing in sorted(grid.glob("runs/*/lift_cd/timing.json")):
            cell = timing.parent.parent.name
            if cell in done:
                continue
            for held in json.loads(timing.read_text())["cd"].get("held_out_answers", []):
                rows.append({"cell": cell, **held})
        out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        teacher = sum(adds_nothing(r["question"], r["teacher"]) for r in rows)
        lifted = sum(adds_nothing(r["question"], r["lifted"]) for r in rows)
        cells = len({r["cell"] for r in rows})
        print(f"{grid}: {len(rows)} held-out questions in {cells} cells; adding nothing to the question: "
              f"teacher {teacher}, LIFTed model {lifted}")


if __name__ == "__main__":
    main()
