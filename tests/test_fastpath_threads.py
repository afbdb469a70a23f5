"""The thread chooser: keeps the faster count, and tries a far slower one less and less often."""

from __future__ import annotations

from engine.fastpath.threads import EXPLORE_EVERY, MAX_EVERY, ThreadChooser


def _run(chooser: ThreadChooser, cost: dict[int, float], steps: int) -> list[int]:
    picks = []
    for _ in range(steps):
        n = chooser.pick()
        chooser.record(n, cost[n])
        picks.append(n)
    return picks


def test_a_far_slower_option_is_tried_less_and_less():
    chooser = ThreadChooser(most=2)
    picks = _run(chooser, {1: 0.01, 2: 0.3}, 4000)
    trials = [i for i, n in enumerate(picks) if n == 2]
    gaps = [b - a for a, b in zip(trials, trials[1:])]
    assert gaps[0] <= 2 * EXPLORE_EVERY and max(gaps) > 8 * EXPLORE_EVERY
    assert chooser.every[2] == MAX_EVERY
    assert len(trials) < 4000 // EXPLORE_EVERY // 4


def test_the_gap_resets_when_the_loser_wins_again():
    chooser = ThreadChooser(most=2)
    _run(chooser, {1: 0.01, 2: 0.3}, 1000)
    assert chooser.every[2] > EXPLORE_EVERY
    _run(chooser, {1: 0.05, 2: 0.001}, 3000)  # the machine went quiet: two threads win now
    assert chooser.best() == 2 and chooser.every[1] >= EXPLORE_EVERY


def test_a_close_loser_keeps_the_usual_gap():
    chooser = ThreadChooser(most=2)
    _run(chooser, {1: 0.010, 2: 0.012}, 500)
    assert chooser.every[2] == EXPLORE_EVERY
