"""One watch thread per worker process serves every run the process holds.

It writes their heartbeats in one UPDATE every HEARTBEAT_SECONDS (the lease that
executions.recovery checks, on any machine: `services.do_heartbeats`) and looks for terminate
requests among them in one SELECT every WATCH_SECONDS, setting the run's `terminating` event,
which its engine thread honours. Forty runs cost one query every quarter second, not forty.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid

from django.conf import settings
from django.db import connection

from executions.models import Execution
from executions.services import do_heartbeats
from executions.status import ExecutionStatus

logger = logging.getLogger(__name__)
S = ExecutionStatus
WATCH_SECONDS = 0.25
HEARTBEAT_SECONDS = 2.0

_worker_ids: dict[int, str] = {}


def worker_id() -> str:
    """This process's id in `Execution.worker_id`: `<host>:<pid>:<random>` (host is
    WORKER_HOSTNAME; recovery reads the pid of a worker on its own host). Made per process, as
    django-q2 forks its workers after this module may have been imported."""
    pid = os.getpid()
    if pid not in _worker_ids:
        _worker_ids[pid] = f"{settings.WORKER_HOSTNAME}:{pid}:{uuid.uuid4().hex[:6]}"
    return _worker_ids[pid]


class Watch:
    """What a run's engine learns from the watch thread: a terminate was asked."""

    def __init__(self, execution_id: int):
        self.execution_id = execution_id
        self.terminating = threading.Event()


class Watcher:
    """The runs this process holds, and the thread that watches them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.watches: dict[int, Watch] = {}
        self.pid = 0

    def watch(self, execution_id: int) -> Watch:
        """Starts watching a run this process has claimed (and the thread, on first use in
        this process or a fork of it)."""
        with self.lock:
            if self.pid != os.getpid():
                self.pid = os.getpid()
                threading.Thread(target=self._loop, name="run-watch", daemon=True).start()
            watch = self.watches[execution_id] = Watch(execution_id)
        return watch

    def unwatch(self, execution_id: int) -> None:
        with self.lock:
            self.watches.pop(execution_id, None)

    def _loop(self) -> None:
        last_beat = 0.0
        while True:
            time.sleep(WATCH_SECONDS)
            with self.lock:
                watches = dict(self.watches)
            if not watches:
                continue
            try:
                asked = Execution.objects.filter(pk__in=list(watches), status=S.TERMINATING)
                for pk in asked.values_list("pk", flat=True):
                    watches[pk].terminating.set()
                if time.monotonic() - last_beat >= HEARTBEAT_SECONDS:
                    last_beat = time.monotonic()
                    do_heartbeats(list(watches), worker_id())
            except Exception:
                logger.exception("watching runs failed")
                connection.close()  # a broken connection is opened anew next time


watcher = Watcher()
