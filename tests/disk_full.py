"""A folder on a disk that fills up, for the disk-full tests (``SmallDisk``).

Where this process may mount one (root in a container that allows it), the folder is a real
``tmpfs`` whose size is shrunk to what it holds plus ``free`` bytes: writes fail with the
kernel's ENOSPC, part-way through a file. Elsewhere the same is injected: ``io.open`` (through
which ``open``, ``os.fdopen``, ``Path.write_bytes`` and ``zipfile`` all open files) is wrapped so
that files opened for writing under the folder share a budget of ``free`` bytes; the write that
crosses it writes the part that fits, then raises ``OSError(ENOSPC)``. ``FACET_TEST_NO_MOUNT=1``
forces the injection.
"""
from __future__ import annotations

import errno
import io
import os
import subprocess
from pathlib import Path

PAGE = 4096


class _Budget:
    def __init__(self) -> None:
        self.left: int | None = None

    def take(self, wanted: int) -> int:
        """Bytes of ``wanted`` that fit; the budget shrinks by that much."""
        if self.left is None:
            return wanted
        fits = min(wanted, self.left)
        self.left -= fits
        return fits


class _FullDiskFile:
    """A real file object whose ``write`` draws on a shared budget."""

    def __init__(self, raw, budget: _Budget, path: str) -> None:
        self._raw, self._budget, self._path = raw, budget, path

    def write(self, data) -> int:
        data = bytes(data) if not isinstance(data, str) else data
        fits = self._budget.take(len(data))
        if fits < len(data):
            self._raw.write(data[:fits])
            self._raw.flush()
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self._path)
        return self._raw.write(data)

    def __getattr__(self, name):
        return getattr(self._raw, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._raw.close()

    def __iter__(self):
        return iter(self._raw)


def can_mount() -> bool:
    """Whether this process may mount a tmpfs (tried once, on a scratch folder)."""
    if os.environ.get("FACET_TEST_NO_MOUNT") or os.geteuid() != 0:
        return False
    global _CAN_MOUNT
    if _CAN_MOUNT is None:
        import tempfile
        probe = Path(tempfile.mkdtemp(prefix="facet-mount-probe-"))
        _CAN_MOUNT = _run("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe))
        if _CAN_MOUNT:
            _run("umount", str(probe))
        probe.rmdir()
    return _CAN_MOUNT


_CAN_MOUNT: bool | None = None


def _run(*cmd: str) -> bool:
    return subprocess.run(cmd, capture_output=True).returncode == 0


class SmallDisk:
    """``folder`` (created empty) on a disk with room to spare until :meth:`fill_up`.

    ``mode``: ``"tmpfs"`` or ``"injected"`` (see the module docstring). Use as a context
    manager or call :meth:`close`.
    """

    def __init__(self, folder: Path, monkeypatch) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        if any(self.folder.iterdir()):
            raise ValueError(f"{folder} is not empty")
        self.mode = "tmpfs" if can_mount() else "injected"
        self._budget = _Budget()
        if self.mode == "tmpfs":
            if not _run("mount", "-t", "tmpfs", "-o", "size=256m", "tmpfs", str(self.folder)):
                raise RuntimeError(f"cannot mount a tmpfs on {folder}")
        else:
            real_open = io.open
            root = str(self.folder.resolve()) + os.sep

            def open_(file, mode="r", *args, **kwargs):
                raw = real_open(file, mode, *args, **kwargs)
                if not any(c in mode for c in "wax+"):
                    return raw
                path = os.readlink(f"/proc/self/fd/{file}") if isinstance(file, int) \
                    else os.path.realpath(os.fspath(file))
                if not path.startswith(root):
                    return raw
                return _FullDiskFile(raw, self._budget, path)

            monkeypatch.setattr(io, "open", open_)

    def fill_up(self, free: int) -> None:
        """Leave only ``free`` bytes (rounded up to a page on a tmpfs) for new data."""
        if self.mode == "tmpfs":
            stat = os.statvfs(self.folder)
            used = (stat.f_blocks - stat.f_bfree) * stat.f_frsize
            size = used + -(-free // PAGE) * PAGE
            assert _run("mount", "-o", f"remount,size={size}", str(self.folder)), size
        else:
            self._budget.left = free

    def free_up(self) -> None:
        """Room again (what an admin does after a disk-full alert)."""
        if self.mode == "tmpfs":
            assert _run("mount", "-o", "remount,size=256m", str(self.folder))
        else:
            self._budget.left = None

    def close(self) -> None:
        if self.mode == "tmpfs":
            _run("umount", "-l", str(self.folder))

    def __enter__(self) -> "SmallDisk":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
