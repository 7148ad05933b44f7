"""Saving the fused map where, and only where, the operator allowed it (ROS-free; the node wires it to a service).

Usage:
    saver = MapSaver("/data/maps")                  # "" = saving off
    job = saver.start(gaussians, "map.ply")  # SaveJob; job.refused: a reason, else it runs on its own thread
    ok, message = job.wait()                 # the outcome

Rules, because any participant on the DDS domain can ask for a save:
- the file is `save_dir/name` with a bare `name` ending in `.ply`: no paths, so nothing lands outside `save_dir`
  (resolved once with realpath) or in a launch file's working directory;
- an existing target must be a regular file (never followed if a symlink; a FIFO is never opened) holding a
  3DGS PLY header, so a text file or anything else the user owns is never overwritten;
- the PLY goes to a temp file in the same directory, is fsynced and then renamed over the target
  (`os.replace` replaces a symlink itself, never its target): a crash mid-save leaves the old map whole;
- one save at a time, on its own thread: the executor keeps serving while a large map is written.
"""

from __future__ import annotations

import os
import stat
import tempfile
import threading
from pathlib import Path
from typing import Optional

from gssplat_ros.ply import save_ply

PLY_SUFFIX = ".ply"
# Header lines every 3DGS PLY that we write (ply.save_ply) carries: what "our PLY" means when overwriting.
_GAUSSIAN_PLY_PROPERTIES = (b"property float x", b"property float opacity", b"property float rot_0")
_HEADER_BYTES = 64 * 1024


class SaveRefused(Exception):
    """A save request that breaks a rule above; the message says which."""


def check_file_name(name: str) -> None:
    """Raise ValueError unless `name` is a bare file name ending in .ply."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise ValueError(f"must be a bare file name (no directories), got {name!r}")
    if not name.endswith(PLY_SUFFIX) or name == PLY_SUFFIX:
        raise ValueError(f"must end in {PLY_SUFFIX}, got {name!r}")


def is_gaussian_ply_header(head: bytes) -> bool:
    """True when `head` (a file's first bytes) is a PLY header with the 3DGS vertex fields."""
    end = head.find(b"end_header")
    if not head.startswith(b"ply") or end < 0:
        return False
    header = head[:end]
    return all(p in header for p in _GAUSSIAN_PLY_PROPERTIES)


def resolve_target(save_dir: str, name: str) -> Path:
    """The path a save of `name` may write, or SaveRefused naming the rule it breaks."""
    if not save_dir:
        raise SaveRefused("map saving is off: set the map_save_dir parameter")
    try:
        check_file_name(name)
    except ValueError as exc:
        raise SaveRefused(f"file name {exc}") from None
    root = os.path.realpath(save_dir)
    if not os.path.isdir(root):
        raise SaveRefused(f"map_save_dir {save_dir!r} is not a directory")
    target = Path(root) / name
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        return target
    if stat.S_ISLNK(st.st_mode):
        raise SaveRefused(f"{target} is a symbolic link: not followed")
    if not stat.S_ISREG(st.st_mode):
        raise SaveRefused(f"{target} exists and is not a regular file")
    # O_NOFOLLOW | O_NONBLOCK: should the file be swapped for a link or a FIFO since lstat, this fails
    # or returns at once instead of following the link or waiting for a writer.
    fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise SaveRefused(f"{target} exists and is not a regular file")
        head = os.read(fd, _HEADER_BYTES)
    finally:
        os.close(fd)
    if not is_gaussian_ply_header(head):
        raise SaveRefused(f"{target} exists and is not a Gaussian PLY: not overwritten")
    return target


def write_atomically(target: Path, gaussians) -> None:
    """Write `gaussians` as a PLY to a temp file beside `target`, fsync it and rename it over `target`."""

    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)  # O_EXCL, mode 0600
    os.close(fd)
    try:
        save_ply(tmp, gaussians)
        fd = os.open(tmp, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    dir_fd = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)  # the rename itself survives a power cut
    finally:
        os.close(dir_fd)


class SaveJob:
    """One save request: refused at once (`refused` says why) or running until `done` is set."""

    def __init__(self, refused: str = ""):
        self.refused = refused
        self.done = threading.Event()
        self.outcome: tuple[bool, str] = (False, refused)
        if refused:
            self.done.set()

    def wait(self, timeout_s: Optional[float] = None) -> tuple[bool, str]:
        if not self.done.wait(timeout_s):
            return False, "the save is still running"
        return self.outcome


class MapSaver:
    """Runs at most one save at a time, on its own thread."""

    def __init__(self, save_dir: str):
        self.save_dir = save_dir
        self._lock = threading.Lock()
        self._busy_with: Optional[Path] = None
        self._done_callbacks = []

    def add_done_callback(self, fn) -> None:
        """fn() is called on the save thread when a save ends (the node wakes its executor with it)."""
        self._done_callbacks.append(fn)

    @property
    def busy(self) -> bool:
        with self._lock:
            return self._busy_with is not None

    def start(self, gaussians, name: str) -> SaveJob:
        """Start saving `gaussians` (None = the map is empty) to save_dir/name, or refuse with a reason."""
        with self._lock:
            if self._busy_with is not None:
                return SaveJob(f"a save to {self._busy_with} is still running; ask again when it has finished")
            try:
                target = resolve_target(self.save_dir, name)
            except (SaveRefused, OSError) as exc:
                return SaveJob(f"save refused: {exc}")
            if gaussians is None or len(gaussians) == 0:
                return SaveJob("save refused: the map is empty (is fuse_map on, and has a window been predicted?)")
            self._busy_with = target
            job = SaveJob()
            threading.Thread(target=self._run, args=(job, target, gaussians), name="gssplat-save-map",
                             daemon=True).start()
        return job

    def _run(self, job: SaveJob, target: Path, gaussians) -> None:
        try:
            write_atomically(target, gaussians)
            job.outcome = (True, f"saved {len(gaussians)} Gaussians to {target}")
        except Exception as exc:  # reported to the requester; the old map is still whole
            job.outcome = (False, f"saving to {target} failed: {type(exc).__name__}: {exc}")
        with self._lock:
            self._busy_with = None
        job.done.set()
        for fn in self._done_callbacks:
            fn()
