"""One writer per checkpoint: a lock file with the writer's pid beside the checkpoint.

``run.ckpt`` is guarded by ``.run.ckpt.lock``, created exclusively by the process that trains
into it (for the whole of :meth:`Trainer.fit`, and around a single :meth:`Trainer.save`) and
removed when it is done. A second process that wants to write the same file while the first
still runs is refused with a message naming the other pid; a lock left by a process that no
longer runs (killed, crashed) is taken over. Within one process the lock is shared.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from chainrule.serialization import CheckpointError, pid_alive

__all__ = ["CheckpointLock"]


class CheckpointLock:
    """The lock of the checkpoint ``path``: :meth:`acquire`, :meth:`release`, :meth:`held`."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.target = Path(path)
        self.path = self.target.parent / f".{self.target.name}.lock"
        self.owned = False

    def _owner(self) -> int | None:
        try:
            text = self.path.read_text(encoding="ascii", errors="replace").strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    def _create(self) -> None:
        # Written in full under a private name, then linked: the lock never exists empty.
        temp = self.path.with_name(f"{self.path.name}.{os.getpid()}-{secrets.token_hex(4)}")
        temp.write_text(f"{os.getpid()}\n", encoding="ascii")
        try:
            os.link(temp, self.path)
        finally:
            temp.unlink()

    def acquire(self) -> None:
        """Take the lock, or raise :class:`CheckpointError` if another live process has it
        (``FileNotFoundError`` if the checkpoint's folder does not exist)."""
        if not self.target.parent.is_dir():
            raise FileNotFoundError(
                f"cannot save checkpoint {self.target}: the folder {self.target.parent} does "
                "not exist"
            )
        for _ in range(5):
            try:
                self._create()
            except FileExistsError:
                owner = self._owner()
                if owner == os.getpid():
                    return  # this process holds it already (another trainer or fit)
                if owner is not None and pid_alive(owner) is not False:
                    raise CheckpointError(
                        f"checkpoint {self.target} belongs to another running training "
                        f"(process {owner}, lock file {self.path}); save to another path, or "
                        "stop that run (delete the lock file if no such run exists)"
                    ) from None
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path)  # stale: its process is gone
                continue
            except OSError as exc:
                raise CheckpointError(
                    f"cannot save checkpoint {self.target}: cannot create its lock file "
                    f"{self.path} ({exc.strerror or exc})"
                ) from None
            self.owned = True
            return
        raise CheckpointError(f"cannot take the lock {self.path} of checkpoint {self.target}")

    def release(self) -> None:
        """Remove the lock file if this object created it."""
        if self.owned:
            self.owned = False
            with contextlib.suppress(FileNotFoundError):
                if self._owner() == os.getpid():
                    os.unlink(self.path)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """``with lock.held():`` acquire, run the block, release."""
        self.acquire()
        try:
            yield
        finally:
            self.release()
