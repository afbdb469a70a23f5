"""Pick the number of intra-op threads for decode steps by measuring, as the loop runs.

A decode step is ~150 small ops plus a few memory-bound matmuls. Every op that
torch parallelises waits at a barrier for all its threads; when the CPU is
shared (other programs, other engineers' builds), one descheduled thread stalls
every op, and one thread becomes several times faster than two (measured: from
0.4 to 90 ms per step on the tiny model, bench/README.md). On an idle machine
more threads pull more memory bandwidth for the matmuls. Neither choice is
right everywhere, so the decoder times both and keeps the faster, re-checking
now and then because the load changes.
"""

from __future__ import annotations

import torch

EXPLORE_EVERY = 48  # steps between two trial steps of the option currently losing
MAX_EVERY = 1536  # the longest that gap grows to (it doubles while the loser stays far behind)
FAR_BEHIND = 2.0  # a trial this many times slower than the best one doubles the gap
SMOOTHING = 0.2  # weight of a new measurement in the running estimate


class ThreadChooser:
    def __init__(self, most: int | None = None, explore_every: int = EXPLORE_EVERY, *, fixed: bool = False) -> None:
        """``fixed``: always ``most`` threads (benchmarks give every system the same count)."""
        most = most or torch.get_num_threads()
        self.explore_every = explore_every
        self.options = [most] if fixed else sorted({1, most})
        self.cost: dict[int, float | None] = {n: None for n in self.options}  # seconds per step
        # Steps between trials of each option while it loses. It grows when the loser is far behind: torch's
        # int4 kernel on two threads of a busy machine took 30x longer per step, so every trial is expensive.
        self.every: dict[int, int] = {n: explore_every for n in self.options}
        self.steps = 0

    def pick(self) -> int:
        """The thread count for the next step."""
        self.steps += 1
        if len(self.options) == 1:
            return self.options[0]
        untried = [n for n in self.options if self.cost[n] is None]
        if untried:
            return untried[0]
        best = min(self.options, key=lambda n: self.cost[n])
        other = next(n for n in self.options if n != best)
        if self.steps % self.every[other] == 0:
            return other
        return best

    def record(self, threads: int, seconds: float) -> None:
        """``seconds`` per unit of work (a step, or a prompt token)."""
        old = self.cost[threads]
        self.cost[threads] = seconds if old is None else (1 - SMOOTHING) * old + SMOOTHING * seconds
        others = [self.cost[n] for n in self.options if n != threads and self.cost[n] is not None]
        if not others:
            return
        if seconds > FAR_BEHIND * min(others):  # a trial far behind: wait longer before the next one
            self.every[threads] = min(MAX_EVERY, self.every[threads] * 2)
        elif seconds <= min(others) and self.every[threads] != self.explore_every:  # the loser won: start over
            self.every = {n: self.explore_every for n in self.options}

    def best(self) -> int:
        known = [n for n in self.options if self.cost[n] is not None]
        return min(known, key=lambda n: self.cost[n]) if known else self.options[-1]
