"""What a step checkpoint costs the event loop (``contest.checkpoint``): one period's
``CheckpointBook.snapshot()`` for a step holding ``--targets`` targets, each with Sleep's data
(an integer deadline), as ``for_each_target_with_resume`` keeps them; and the same when nothing
changed (the snapshot is still encoded, then compared; no write).

Floor, measured first in the same run: ``json.dumps`` of a plain ``{target id: data}`` dict of
the same size (the encoding any checkpoint needs). Printed per round: the floor, the snapshot,
and their ratio, so the noise of a shared machine shows.

    python benchmarks/checkpoints.py [--targets 10000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import time

from contest.checkpoint import CheckpointBook
from contest.target import Target


def best(fn: object, repeat: int = 5) -> float:
    assert callable(fn)
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--targets", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    targets = [Target(f"target-{i:06d}") for i in range(args.targets)]
    deadline = int(time.time() * 1000)
    in_hand = [(t, deadline + i) for i, t in enumerate(targets)]
    plain = {t.id: d for t, d in in_hand}
    book = CheckpointBook()
    book.slot(1, 0, "Test", "nap").keep(1, lambda: in_hand)
    for rnd in range(1, args.rounds + 1):
        floor = best(lambda: json.dumps(plain, separators=(",", ":")))
        snap = best(book.snapshot)
        print(
            f"round {rnd}: {args.targets} targets in hand: floor (json.dumps) "
            f"{floor * 1e3:.2f} ms, snapshot {snap * 1e3:.2f} ms ({snap / floor:.1f}x), "
            f"{len(book.snapshot() or b'') / 1024:.0f} KiB"
        )


if __name__ == "__main__":
    main()
