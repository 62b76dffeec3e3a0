"""Per-shard progress only moves forward, whatever order the executor's events arrive in (issue 23)."""

from __future__ import annotations

import itertools

from vlnav_data.collect.executors import TaskEvent
from vlnav_data.collect.sharded_progress import ShardTracker


def _tracker(seen):
    return ShardTracker(num_episodes=8, num_shards=2, complete={}, todo=[0, 1], progress=seen.append)


def _report(item, attempt, episodes, frames):
    return TaskEvent(
        item=item,
        kind="report",
        attempt=attempt,
        node="h/1",
        pid=10 + attempt,
        fields={"episodes_done": episodes, "frames_done": frames},
    )


def test_late_report_after_finished_does_not_move_the_shard_back():
    seen = []
    t = _tracker(seen)
    t.on_event(TaskEvent(item=0, kind="started", attempt=1, node="h/1", pid=11))
    t.on_event(_report(0, 1, 2, 200))
    t.on_event(TaskEvent(item=0, kind="finished", attempt=1, node="h/1", pid=11))
    t.on_event(_report(0, 1, 3, 300))  # sent before 'finished', delivered after
    t.on_event(TaskEvent(item=0, kind="started", attempt=1, node="h/1", pid=11))  # a late duplicate
    last = seen[-1].shards[0]
    assert (last.state, last.episodes_done, last.episodes_total) == ("done", 4, 4)
    assert seen[-1].shards_done == 1 and seen[-1].episodes_done == 4
    assert seen[-1].frames_done == 300


def test_every_delivery_order_is_monotonic():
    events = [
        TaskEvent(item=0, kind="started", attempt=1, node="h/1", pid=11),
        _report(0, 1, 1, 100),
        _report(0, 1, 3, 300),
        TaskEvent(item=0, kind="started", attempt=2, node="h/2", pid=12),  # retry after a lost worker
        _report(0, 2, 2, 50),  # the retry resumed from 2 committed episodes... and is behind attempt 1's report
        TaskEvent(item=0, kind="finished", attempt=2, node="h/2", pid=12),
    ]
    for order in itertools.permutations(events):
        seen = []
        t = _tracker(seen)
        for e in order:
            t.on_event(e)
        done = [p.shards[0].episodes_done for p in seen]
        totals = [p.episodes_done for p in seen]
        assert done == sorted(done), order
        assert totals == sorted(totals), order
        assert seen[-1].shards[0].state == "done" and done[-1] == 4
        states = [p.shards[0].state for p in seen]
        assert "done" not in states or all(s == "done" for s in states[states.index("done") :]), order
