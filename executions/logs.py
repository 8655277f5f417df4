"""Stage logs: masked, batched into ordered chunks, written to the database, then published.

Runners call `write()` from the stage thread; only the engine's supervising thread calls
`flush()`, so the database is touched by one thread and the chunks keep their order.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterable

from django.db.models import Max

from executions.models import Execution, LogChunk, StageRun

MASK = "***"
MIN_SECRET_LENGTH = 3
MAX_LINE_LENGTH = 16 * 1024


def secret_forms(values: Iterable[str]) -> list[str]:
    """Each secret as it may appear in output: itself, its base64 form, each of its lines."""
    forms: set[str] = set()
    for value in values:
        if not value:
            continue
        candidates = {value, value.strip()}
        candidates |= {line.strip() for line in value.splitlines()}
        for candidate in list(candidates):
            if candidate:
                raw = candidate.encode()
                candidates.add(base64.b64encode(raw).decode())
                candidates.add(base64.b64encode(raw).decode().rstrip("="))
                candidates.add(base64.urlsafe_b64encode(raw).decode().rstrip("="))
        forms |= {c for c in candidates if len(c) >= MIN_SECRET_LENGTH}
    # Longest first, so a secret that contains another is masked whole.
    return sorted(forms, key=len, reverse=True)


class Masker:
    def __init__(self, secrets: Iterable[str] = ()):
        self.forms = secret_forms(secrets)

    def __call__(self, text: str) -> str:
        for form in self.forms:
            if form in text:
                text = text.replace(form, MASK)
        return text


class LogWriter:
    def __init__(
        self,
        execution: Execution,
        secrets: Iterable[str] = (),
        max_lines: int = 2000,
        max_delay: float = 0.2,
    ):
        self.execution = execution
        self.mask = Masker(secrets)
        self.max_lines = max_lines
        self.max_delay = max_delay
        self.stage: StageRun | None = None
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._first_at = 0.0
        self._partial = ""
        last = LogChunk.objects.filter(execution=execution).aggregate(m=Max("seq"))["m"]
        self.next_seq = 0 if last is None else last + 1

    def add_secrets(self, values: Iterable[str]) -> None:
        self.mask = Masker([*self.mask.forms, *values])

    def set_stage(self, stage: StageRun) -> None:
        if self.stage is not None:  # lines written before the first stage go with it
            self.flush()
        self.stage = stage

    def write(self, text: str) -> None:
        """Appends output; a trailing partial line waits for its end (or the next flush)."""
        with self._lock:
            text = self._partial + text.replace("\r\n", "\n")
            *complete, self._partial = text.split("\n")
            if complete:
                self._add(complete)

    def line(self, text: str) -> None:
        with self._lock:
            self._add(text.splitlines() or [""])

    def _add(self, lines: list[str]) -> None:
        if not self._lines:
            self._first_at = time.monotonic()
        self._lines += [line[:MAX_LINE_LENGTH] for line in lines]

    def due(self) -> bool:
        with self._lock:
            return bool(self._lines) and (
                len(self._lines) >= self.max_lines
                or time.monotonic() - self._first_at >= self.max_delay
            )

    def flush(self, final: bool = False) -> None:
        with self._lock:
            if final and self._partial:
                self._lines.append(self._partial)
                self._partial = ""
            lines, self._lines = self._lines, []
        if not lines or self.stage is None:
            return
        # Mask the joined text too: a secret may have been split across two writes.
        text = self.mask("\n".join(self.mask(line) for line in lines)) + "\n"
        chunk = LogChunk.objects.create(
            execution_id=self.execution.pk, stage_run=self.stage, seq=self.next_seq, text=text
        )
        self.next_seq += 1
        from executions.live import publish_log

        publish_log(chunk)
