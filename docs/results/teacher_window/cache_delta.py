"""Cut a run's teacher cache back to the answers its seed caches lack, so a folder that started from the union of
other folders' caches commits only its new answers (each line once, first occurrence kept, order kept):

    python docs/results/teacher_window/cache_delta.py docs/results/niah_joint/teacher_cache/teacher_cache.jsonl \
        docs/results/niah docs/results/niah_what_is docs/results/niah_what_is_e8 docs/results/niah_whole_sentences

Seeds are result folders (their `teacher_cache/teacher_cache.jsonl` is read) or cache files; a torn last line
(a write a crash cut short) is skipped, as the cache itself does. The target is replaced atomically, so an
interrupted cut leaves it whole. Resuming the run needs the union again:
`cat` the seeds' caches and the cut file, as the folder's README says.
"""

import json
import sys
from pathlib import Path

from lift_jax.durable import read_jsonl, write_atomic


def cache_file(path: str) -> Path:
    """The teacher cache file of a result folder, or `path` itself if it names a file."""
    candidate = Path(path)
    if candidate.is_dir():
        candidate = candidate / "teacher_cache" / "teacher_cache.jsonl"
    if not candidate.is_file():
        raise SystemExit(f"no teacher cache at {candidate}: pass a result folder with teacher_cache/ or a .jsonl file")
    return candidate


def cache_keys(path: Path) -> set[str]:
    """The keys of every answer in one teacher cache file."""
    return {record["key"] for _, record in read_jsonl(path) if record is not None}


def main() -> None:
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    target = cache_file(sys.argv[1])
    seen: set[str] = set()
    for seed in sys.argv[2:]:
        seen |= cache_keys(cache_file(seed))
    seeded = len(seen)
    kept, total = [], 0
    with target.open() as lines:
        for line in lines:
            if not line.endswith("\n") or not line.strip():  # torn tail or blank
                continue
            total += 1
            key = json.loads(line)["key"]
            if key not in seen:
                seen.add(key)
                kept.append(line)
    write_atomic(target, "".join(kept))
    print(f"{target}: kept {len(kept)} of {total} lines ({seeded} keys in the seeds)")


if __name__ == "__main__":
    main()
