"""The child processes a stage runs on this worker (git, scanners), one at a time, each in its
own process group so that terminating the run kills it together with its helpers."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from executions.runners.base import Context


class ProcessGroup:
    """Starts processes for one stage; `ctx`'s terminate kills the running one's group."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.proc: subprocess.Popen | None = None
        # Held while starting, reaping and killing, so a kill never hits a reaped pid (reused).
        self.lock = threading.Lock()
        ctx.on_cancel(self.kill)

    def start(self, argv: list[str], **popen: Any) -> subprocess.Popen:
        """Popen(argv) with stdin closed, stdout and stderr piped, in a new session. Raises
        Terminated when the run was terminated before it started."""
        with self.lock:
            self.ctx.check_cancelled()
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
                **popen,
            )
            return self.proc

    def wait(self) -> int:
        """The exit code of the process `start` returned, once it has ended."""
        assert self.proc is not None
        with self.lock:
            return self.proc.wait()

    def kill(self) -> None:
        with self.lock:
            if self.proc is not None and self.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):  # it has just ended
                    os.killpg(self.proc.pid, signal.SIGKILL)
