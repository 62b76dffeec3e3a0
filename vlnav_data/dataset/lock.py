"""A lock file that keeps a second writer away from an output path while a build runs.

``<final path>.lock`` holds the writer's PID and host. It is created with ``O_CREAT | O_EXCL``; a lock
whose process no longer runs on this host (a build killed with SIGKILL) is stale and is taken over.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

from vlnav_data.errors import ConfigError


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
    """

    def __init__(self, lock_path: Path) -> None:
        self.path = Path(lock_path)
        self._held = False

    def acquire(self) -> None:
        """Take the lock, replacing a stale one.

        Raises:
            ConfigError: another live process holds it, or the directory cannot be written.
        """
        payload = json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode()
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = self._owner()
                if owner is not None and owner.get("pid") == os.getpid():
                    raise ConfigError(
                        f"this process already writes to '{self.path.with_suffix('')}'; close that writer first"
                    ) from None
                if owner is not None and self._owner_alive(owner):
                    raise ConfigError(
                        f"another build (pid {owner.get('pid')} on {owner.get('host')}) is writing "
                        f"'{self.path.with_suffix('')}' (lock file '{self.path}'); wait for it to finish or "
                        "choose another --out"
                    ) from None
                self.path.unlink(missing_ok=True)  # stale: its process is gone
                continue
            except OSError as exc:
                raise ConfigError(
                    f"cannot create the lock file '{self.path}': {exc.strerror}; choose a writable output directory"
                ) from exc
            with os.fdopen(fd, "wb") as fh:
                fh.write(payload)
            self._held = True
            return
        raise ConfigError(f"could not take the lock '{self.path}' after removing a stale one; try again")

    def check_free(self) -> None:
        """Raise :class:`ConfigError` when a live process holds the lock (without taking it)."""
        if not self.path.exists():
            return
        owner = self._owner()
        if owner is not None and owner.get("pid") != os.getpid() and self._owner_alive(owner):
            raise ConfigError(
                f"another build (pid {owner.get('pid')} on {owner.get('host')}) is writing "
                f"'{self.path.with_suffix('')}' (lock file '{self.path}'); wait for it to finish or "
                "choose another --out"
            )

    def release(self) -> None:
        """Remove the lock file when this process holds it."""
        if self._held:
            self.path.unlink(missing_ok=True)
            self._held = False

    @property
    def held(self) -> bool:
        return self._held

    def _owner(self) -> dict | None:
        try:
            text = self.path.read_text()
            owner = json.loads(text)
        except (OSError, ValueError):
            return None  # half-written or vanished: treated as stale
        return owner if isinstance(owner, dict) and isinstance(owner.get("pid"), int) else None

    @staticmethod
    def _owner_alive(owner: dict) -> bool:
        if owner.get("host") not in (None, socket.gethostname()):
            return True  # another host: we cannot tell, so we respect it
        return _pid_alive(int(owner["pid"]))

    def __enter__(self) -> WriteLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
