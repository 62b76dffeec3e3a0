"""The output lock (filelock marker): one winner among racing processes, takeover rules, messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from vlnav_data.dataset import DatasetWriter, lock_path
from vlnav_data.dataset.layout import DatasetLayout, EncoderEntry
from vlnav_data.dataset.lock import LockHeldError, WriteLock, read_holder, this_host
from vlnav_data.errors import ConfigError

# Each racer takes one lock per round, when the test says "go" to both (each is blocked on its stdin, so the
# two attempts run together), reports its outcome, and keeps what it wins until the test lets it exit after
# the last round, so two winners of one lock would both be recorded. No clocks: whatever the interleaving,
# exactly one racer may win each lock.
RACER = """
import json, sys
from vlnav_data.dataset.lock import WriteLock
paths, break_lock = json.loads(sys.argv[1]), sys.argv[2] == "1"
held = []
print("ready", flush=True)
for path in paths:
    assert sys.stdin.readline() == "go\\n"
    lock = WriteLock(path, break_lock=break_lock)
    try:
        lock.acquire()
        held.append(lock)
        print(json.dumps("won"), flush=True)
    except Exception as exc:
        print(json.dumps(type(exc).__name__ + ": " + str(exc)), flush=True)
assert sys.stdin.readline() == "exit\\n"
"""


def _race(paths: list[str], break_lock: bool) -> list[list[str]]:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, json.dumps(paths), "1" if break_lock else "0"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        assert [p.stdout.readline() for p in procs] == ["ready\n", "ready\n"]
        outs: list[list[str]] = [[], []]
        for _ in paths:
            for p in procs:  # both are released before either answers
                p.stdin.write("go\n")
                p.stdin.flush()
            for p, out in zip(procs, outs, strict=True):
                out.append(json.loads(p.stdout.readline()))
        for p in procs:  # every round is over: only now may the winners let go
            _, err = p.communicate("exit\n", timeout=120)
            assert p.returncode == 0, err
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return outs


def _foreign_marker(path, pid=4242, host="node-lost-7"):
    """A lock file as filelock writes it for a holder on another machine (PID line, host line, start)."""
    path.write_text(f"{pid}\n{host}\n123456\n")


def test_two_processes_never_both_win(tmp_path):
    free = [str(tmp_path / f"free{r}.h5.lock") for r in range(6)]
    stale = [tmp_path / f"stale{r}.h5.lock" for r in range(6)]
    for p in stale:
        _foreign_marker(p)
    a, b = _race(free, break_lock=False)
    for r in range(len(free)):
        assert sorted([a[r] == "won", b[r] == "won"]) == [False, True], (r, a[r], b[r])
        loser = a[r] if b[r] == "won" else b[r]
        assert loser.startswith("LockHeldError: another process (pid ")
    # Both try to take over the same dead foreign holder's lock: still exactly one wins each time.
    a, b = _race([str(p) for p in stale], break_lock=True)
    for r in range(len(stale)):
        assert sorted([a[r] == "won", b[r] == "won"]) == [False, True], (r, a[r], b[r])
    leftovers = [p.name for p in tmp_path.iterdir() if ".broken-" in p.name or p.name.endswith(".break")]
    assert leftovers == []


def test_foreign_holder_message_says_how_to_take_over(tmp_path):
    out = tmp_path / "d.h5"
    _foreign_marker(lock_path(out))
    expected = (
        f"'{out}' is locked by pid 4242 on node-lost-7 (lock file '{lock_path(out)}'), which this host cannot "
        "check; if that process is gone (killed or its node lost), pass --break-lock to take the lock "
        "over, otherwise wait for it or choose another --out"
    )
    with pytest.raises(LockHeldError) as info:
        WriteLock(lock_path(out)).check_free()
    assert str(info.value) == expected
    assert info.value.holder.pid == 4242 and info.value.holder.host == "node-lost-7"
    assert not info.value.holder.on_this_host
    with pytest.raises(ConfigError) as info:
        WriteLock(lock_path(out)).acquire()
    assert str(info.value) == expected
    # --break-lock takes it over; the lock file then names this process.
    lock = WriteLock(lock_path(out), break_lock=True)
    lock.check_free()
    lock.acquire()
    holder = read_holder(lock_path(out))
    assert holder.pid == os.getpid() and holder.host == this_host() and holder.on_this_host
    lock.release()
    assert not lock_path(out).exists()


def test_break_lock_never_breaks_a_live_holder_on_this_host(tmp_path):
    out = tmp_path / "d.h5"
    code = (
        "import sys; from vlnav_data.dataset.lock import WriteLock; "
        f"lock = WriteLock({str(lock_path(out))!r}); lock.acquire(); print('held', flush=True); sys.stdin.read()"
    )  # holds the lock until killed
    holder = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline() == b"held\n"
        for lock in (WriteLock(lock_path(out)), WriteLock(lock_path(out), break_lock=True)):
            with pytest.raises(LockHeldError, match=rf"^another process \(pid {holder.pid} on .*wait for it to finish"):
                lock.acquire()
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
        holder.stdin.close()
    # Killed: the lock file is left behind, and a plain acquire takes it over (the PID is provably gone).
    assert read_holder(lock_path(out)).pid == holder.pid
    with WriteLock(lock_path(out)):
        assert read_holder(lock_path(out)).pid == os.getpid()


def test_writer_passes_break_lock_and_refuses_a_second_writer_in_this_process(tmp_path):
    out = tmp_path / "d.h5"
    layout = DatasetLayout(
        image_height=8,
        image_width=8,
        state_names=("x",),
        encoders=(EncoderEntry(name="e", dim=4),),
        fps=10.0,
        wheel_speed_limit_radps=20.0,
    )
    _foreign_marker(lock_path(out))
    with pytest.raises(LockHeldError, match="pass --break-lock"):
        DatasetWriter(out, layout)
    with DatasetWriter(out, layout, break_lock=True) as w:
        assert read_holder(lock_path(out)).pid == os.getpid()
        with pytest.raises(LockHeldError, match="this process already writes to"):
            DatasetWriter(out, layout, mode="overwrite")
        assert w.num_episodes == 0
