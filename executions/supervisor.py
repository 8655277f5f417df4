"""One worker process supervises many runs at once (up to WORKER_CONCURRENCY).

Runs mostly wait on git, the image engine and registries, so each run is a thread of the
django-q2 worker process rather than a process of its own:

- django-q2 stays the queue: starting a run enqueues the task `offer`, which only wakes this
  process's dispatcher and returns. The dispatcher takes queued runs from the database in the
  fair order of executions.scheduler, as many as it has free slots, each with one conditional
  UPDATE, and runs each in a thread (executions.engine.Engine). It also looks every
  POLL_SECONDS, so a run whose task went to a busy process, or to one that died, still starts
  when any worker has room.
- One watch thread serves every run the process holds (executions.watch): heartbeats and
  terminate requests, one query for all of them.
- When django-q2 stops its worker, the dispatcher takes nothing new and the process exits once
  the runs it holds have ended (as it waited for its one task before): `drain` runs among
  multiprocessing's exit finalizers, while the interpreter still works (publishing a log chunk
  needs its thread pools). Run threads are not daemons either, in case that is skipped.
"""

from __future__ import annotations

import logging
import os
import threading

from django.conf import settings
from django.db import connection, connections

from executions.engine import run_claimed
from executions.models import Execution
from executions.scheduler import claim_next
from executions.watch import worker_id

logger = logging.getLogger(__name__)
POLL_SECONDS = 1.0


class Supervisor:
    """The runs this process holds and the dispatcher that takes new ones."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.runs: dict[int, threading.Thread] = {}
        self.wake = threading.Event()
        self.filling = threading.Lock()
        self.pid = 0
        self.dispatching = False
        self.stopping = False

    # --- the dispatcher: takes queued runs while there are free slots ---

    def start_dispatching(self) -> None:
        """Starts this process's dispatcher (once): from django-q2's post_spawn, and from the
        `offer` task in case the signal was not sent."""
        with self.lock:
            if self.pid != os.getpid():  # first use in this process (or a fork of it)
                self.pid = os.getpid()
                self.dispatching = False
            if self.dispatching:
                return
            self.dispatching = True
        from multiprocessing import util

        util.Finalize(None, self.drain, exitpriority=10)
        threading.Thread(target=self._dispatch_loop, name="run-dispatch", daemon=True).start()

    def drain(self) -> None:
        """Takes nothing new and waits for the runs this process holds to end."""
        self.stopping = True
        with self.lock:
            threads = list(self.runs.values())
        if threads:
            logger.warning("stopping: waiting for the %d run(s) this worker holds", len(threads))
        for thread in threads:
            thread.join()

    def free_slots(self) -> int:
        with self.lock:
            return settings.WORKER_CONCURRENCY - len(self.runs)

    def _dispatch_loop(self) -> None:
        # Stopping (or the main thread ended: django-q2 stopped this worker): nothing new.
        while not self.stopping and threading.main_thread().is_alive():
            self.wake.wait(POLL_SECONDS)
            self.wake.clear()
            self.fill()

    def fill(self) -> None:
        """Takes queued runs while this process has free slots and starts each in a thread.
        Called by the dispatcher and straight from the `offer` task (one thread hand-off less
        between a trigger and its run); one caller at a time, the other only wakes it."""
        if not self.filling.acquire(blocking=False):
            self.wake.set()  # the one filling now looks again when it is done
            return
        try:
            free = self.free_slots()
            if free <= 0 or self.stopping or not threading.main_thread().is_alive():
                return
            try:
                taken = claim_next(worker_id(), free)
            except Exception:
                logger.exception("taking queued runs failed")
                connection.close()
                return
            for execution in taken:
                self._launch(execution)
            if len(taken) == free:
                self.wake.set()  # there may be more queued than there were slots
        finally:
            self.filling.release()

    def _launch(self, execution: Execution) -> None:
        def target() -> None:
            try:
                run_claimed(execution)
            except Exception:
                logger.exception("%s: the run's thread crashed", execution)
            finally:
                with self.lock:
                    self.runs.pop(execution.pk, None)
                connections.close_all()
                self.wake.set()  # a slot is free

        thread = threading.Thread(target=target, name=f"run-{execution.pk}")
        with self.lock:
            self.runs[execution.pk] = thread
        thread.start()


supervisor = Supervisor()


def start_dispatching(**kwargs: object) -> None:
    """Connected to django-q2's post_spawn (executions.apps): each worker process takes queued
    runs from its start, not only when a task wakes it."""
    supervisor.start_dispatching()


def offer(execution_id: int) -> str:
    """The django-q2 task enqueued for a new or resumed run: wakes this worker process's
    dispatcher, which starts queued runs in the fair order while it has free slots (not
    necessarily `execution_id` first). Returns at once."""
    supervisor.start_dispatching()
    supervisor.fill()
    return f"offered {execution_id}"
