"""The one lock of the package: a lock file that keeps a second writer away from an output (DESIGN §10).

Every exclusive output takes it: dataset files (``build``, ``embed``, ``merge``, shard directories), a
study directory (``vlnav-study run``) and each attempt of a study cell (:mod:`vlnav_data.study.cells`).

Built on ``filelock.SoftFileLock``: ``<final path>.lock`` is created exclusively and records the
holder's PID, host and process start time. Choices:

- A marker file rather than ``flock``: exclusive creation is atomic on the shared filesystems a cluster
  build writes to (NFSv3+, Lustre, GPFS, CephFS), whereas an ``flock`` lock is invisible to other hosts
  wherever the filesystem does not forward locks (NFS with ``local_lock``, many FUSE mounts), and it
  cannot say who holds it.
- A holder on this host that is gone (SIGKILL, out of memory) is proven dead by its PID and start time
  and filelock takes its lock over by itself: a killed build resumes without any flag.
- **The break-stale rule** (stated here only): a lock whose holder is on this host (same PID namespace)
  and whose process is gone is stale and is taken over without a word; a lock whose holder runs on this
  host is never broken; a lock whose holder is on another host (or left no readable record) cannot be
  judged from here, so it is broken only on the user's word (``break_lock=True``, the ``--break-lock``
  flag, or deleting the lock file, as the error says) once they know that process is gone. Nothing
  is ever broken by age: a long run on a slow node holds its lock for as long as it runs.
- The error names the holder (PID, host and, on this host, its command line: ``vlnav-data embed ...``).
- Two processes never both win. Plain acquisition is filelock's exclusive create. Takeovers are
  serialised by a second lock (``<lock>.break``), and the marker is moved aside and compared with the
  one judged before it is removed, so a holder that arrived meanwhile is put back, not deleted.
"""

from __future__ import annotations

import functools
import os
import secrets
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from vlnav_data.errors import ConfigError

RECORD_WAIT_S = 2.0
"""How long a lock file may stay without a readable record before it counts as unreadable (a new holder
writes its record right after creating the file; filelock waits as long before it reclaims such a file)."""

BREAK_SUFFIX = ".break"
"""Suffix of the lock that serialises takeovers of one lock (``<lock>.break``)."""


@dataclass(frozen=True)
class LockHolder:
    """Who holds a lock, as recorded in the lock file (filelock's marker: PID line, host line, ...).

    Attributes:
        pid: process id of the holder on its host.
        host: host name as filelock records it (``socket.gethostname()``, plus ``?pidns-<id>`` inside a
            container with its own PID namespace; see :func:`this_host`).
    """

    pid: int
    host: str

    @property
    def on_this_host(self) -> bool:
        """True when the holder ran on this machine, in this PID namespace (so its PID can be probed)."""
        return self.host == this_host()

    @property
    def alive_here(self) -> bool:
        """True when the holder is on this host and its process still runs."""
        return self.on_this_host and _pid_alive(self.pid)

    def __str__(self) -> str:
        return f"pid {self.pid} on {self.host}"


class LockHeldError(ConfigError):
    """The output is locked by another writer.

    Attributes:
        lock_path: the lock file.
        holder: the recorded holder (None when the record is missing or unreadable).
    """

    def __init__(self, message: str, *, lock_path: Path, holder: LockHolder | None) -> None:
        super().__init__(message)
        self.lock_path = lock_path
        self.holder = holder


def read_holder(lock_path: str | os.PathLike) -> LockHolder | None:
    """The holder recorded in a lock file, or None when there is no readable record."""
    try:
        lines = Path(lock_path).read_text(errors="replace").splitlines()
    except OSError:
        return None
    if len(lines) < 2 or not lines[0].isdigit() or not lines[1]:
        return None
    return LockHolder(pid=int(lines[0]), host=lines[1])


@functools.lru_cache(maxsize=1)
def this_host() -> str:
    """This process's host as filelock records it in a lock it takes (read back from a lock taken once)."""
    from filelock import SoftFileLock

    with tempfile.TemporaryDirectory(prefix="vlnav-lock-") as d:
        probe = SoftFileLock(os.path.join(d, "probe.lock"), thread_local=False)
        with probe:
            holder = read_holder(probe.lock_file)
    if holder is None or holder.pid != os.getpid():
        raise RuntimeError(f"filelock wrote an unexpected lock record ({holder}); this filelock version is unsupported")
    return holder.host


def holder_command(pid: int, max_chars: int = 240) -> str:
    """The command line of a process on this host, shortened (``vlnav-data embed demos.h5 ...``); "" when
    it cannot be read (no ``/proc``, or the process is gone)."""
    import shlex

    try:
        raw = Path(f"/proc/{int(pid)}/cmdline").read_bytes()
    except OSError:
        return ""
    args = [a.decode(errors="replace") for a in raw.split(b"\0") if a]
    if args and os.path.basename(args[0]).startswith("python"):
        flag = args[1:2]
        args = ["python", "-c", "..."] if flag == ["-c"] else ["python", *args[1:]] if flag == ["-m"] else args[1:]
    if not args:
        return ""
    args[0] = os.path.basename(args[0])
    text = shlex.join(args)
    return text if len(text) <= max_chars else text[: max_chars - 3] + "..."


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class WriteLock:
    """Exclusive lock on an output path, held for the life of a writer.

    Args:
        lock_path: the lock file (``<final path>.lock``).
        break_lock: take over a lock whose holder cannot be probed from this host (another host, or an
            unreadable record). A live holder on this host is never taken over.
        timeout_s: how long :meth:`acquire` waits for a held lock to be released (0: fail at once).
        what: what the lock protects, as messages name it (default: ``'<lock path without .lock>'``).
        takeover_hint: how the user takes over a lock this host cannot judge (messages).
        elsewhere_hint: how the user avoids a held lock (messages).
    """

    def __init__(
        self,
        lock_path: str | os.PathLike,
        *,
        break_lock: bool = False,
        timeout_s: float = 0.0,
        what: str | None = None,
        takeover_hint: str = "pass --break-lock to take the lock over",
        elsewhere_hint: str = "choose another --out",
    ) -> None:
        from filelock import SoftFileLock

        self.path = Path(lock_path)
        self.what = what
        self.takeover_hint = takeover_hint
        self.elsewhere_hint = elsewhere_hint
        self.break_lock = bool(break_lock)
        self.timeout_s = float(timeout_s)
        self._lock = SoftFileLock(str(self.path), thread_local=False)
        self._held = False

    @property
    def target(self) -> Path:
        """The path this lock protects (the lock path without ``.lock``)."""
        return self.path.with_suffix("")

    def acquire(self) -> None:
        """Take the lock; a dead holder on this host is replaced, others as ``break_lock`` says.

        Raises:
            LockHeldError: another live writer holds it, or its holder cannot be probed and ``break_lock``
                is False (the message says how to take it over).
            ConfigError: the lock file cannot be created (unwritable directory).
        """
        from filelock import Timeout

        try:
            self._lock.acquire(timeout=self.timeout_s, poll_interval=0.05)
        except Timeout:
            if not self.break_lock:
                raise self._held_error(self._settled_holder()) from None
            self._take_over()
        except OSError as exc:
            raise ConfigError(
                f"cannot create the lock file '{self.path}': {exc.strerror}; choose a writable output directory"
            ) from exc
        self._held = True

    def check_free(self) -> None:
        """Raise :class:`LockHeldError` when acquiring would fail (without taking the lock)."""
        if not self.path.exists():
            return
        holder = read_holder(self.path)
        if holder is None:
            return  # half-written or vanished: acquire() decides
        if holder.on_this_host:
            if holder.pid != os.getpid() and _pid_alive(holder.pid):
                raise self._held_error(holder)
            return  # dead: filelock takes it over; ours: acquire() says so
        if not self.break_lock:
            raise self._held_error(holder)

    def release(self) -> None:
        """Remove the lock file when this object holds it."""
        if self._held:
            self._lock.release(force=True)
            self._held = False

    @property
    def held(self) -> bool:
        return self._held

    def _take_over(self) -> None:
        from filelock import SoftFileLock, Timeout

        breaker = SoftFileLock(str(self.path) + BREAK_SUFFIX, thread_local=False)
        try:
            breaker.acquire(timeout=0)
        except Timeout:
            raise LockHeldError(
                f"another process is taking over the lock '{self.path}' right now; wait for it, then retry",
                lock_path=self.path,
                holder=read_holder(self.path),
            ) from None
        try:
            try:
                self._lock.acquire(timeout=0)  # released meanwhile
                return
            except Timeout:
                pass
            holder = self._settled_holder()
            try:
                judged = self.path.read_bytes()
            except FileNotFoundError:
                judged = None
            if holder is not None and holder.on_this_host:
                raise self._held_error(holder)  # alive here (a dead one was taken over by acquire)
            if judged is not None:
                aside = self.path.with_name(f"{self.path.name}.broken-{os.getpid()}-{secrets.token_hex(4)}")
                try:
                    os.rename(self.path, aside)
                except FileNotFoundError:
                    pass  # released meanwhile
                else:
                    if aside.read_bytes() != judged:  # a new holder arrived after we judged: give it back
                        try:
                            os.link(aside, self.path)
                        finally:
                            aside.unlink()
                        raise self._held_error(read_holder(self.path))
                    aside.unlink()
            try:
                self._lock.acquire(timeout=0)
            except Timeout:  # a plain acquirer won the freed lock first
                raise self._held_error(read_holder(self.path)) from None
        finally:
            breaker.release(force=True)

    def _settled_holder(self) -> LockHolder | None:
        """The recorded holder, waiting up to :data:`RECORD_WAIT_S` for one that is still writing its record."""
        deadline = time.monotonic() + RECORD_WAIT_S
        while True:
            holder = read_holder(self.path)
            if holder is not None or not self.path.exists() or time.monotonic() >= deadline:
                return holder
            time.sleep(0.02)

    def _held_error(self, holder: LockHolder | None) -> LockHeldError:
        target = self.what or f"'{self.target}'"
        lock = self.path
        if holder is not None and holder.on_this_host and holder.pid == os.getpid():
            msg = f"this process already writes to {target}; close that writer first"
        elif holder is not None and holder.alive_here:
            command = holder_command(holder.pid)
            running = f", running `{command}`" if command else ""
            msg = (
                f"another process ({holder}{running}) is writing {target} (lock file '{lock}'); wait for it to "
                f"finish or {self.elsewhere_hint}"
            )
        else:
            who = str(holder) if holder is not None else "an owner that left no readable record"
            msg = (
                f"{target} is locked by {who} (lock file '{lock}'), which this host cannot check; if that "
                f"process is gone (killed or its node lost), {self.takeover_hint}, otherwise wait for it or "
                f"{self.elsewhere_hint}"
            )
        return LockHeldError(msg, lock_path=lock, holder=holder)

    def __enter__(self) -> WriteLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
