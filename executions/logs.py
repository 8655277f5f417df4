"""Stage logs: decoded and drawn as a terminal would, masked, batched into ordered chunks,
written to the database, then published.

Runners call `write()` from the stage thread; only the engine's supervising thread calls
`flush()`, so the database is touched by one thread and the chunks keep their order.

What the log keeps of a program's output (README, "Logs"):
- bytes are decoded as UTF-8 with one incremental decoder per stream (stdout, stderr), so a
  character split across two writes comes out whole; invalid bytes become U+FFFD;
- a line redrawn with a bare `\\r` (progress bars) keeps its last state, as the GitHub and
  GitLab log viewers show it; `\\r\\n` is a newline; the erase-line sequences `ESC[K`,
  `ESC[1K`, `ESC[2K` are applied; colours (SGR sequences) are kept as printed;
- secret values are masked in every encoding `secret_forms` lists, before any split;
- a line longer than MAX_LINE_LENGTH is split into pieces, each but the last ending with
  CONTINUED: nothing is cut.
"""

from __future__ import annotations

import base64
import codecs
import html
import json
import re
import shlex
import threading
import time
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

from django.db.models import Max

from executions.live import publish_log
from executions.models import Execution, LogChunk, StageRun

MASK = "***"
MIN_SECRET_LENGTH = 3
# A base64 fragment of a secret found inside longer base64 text (`user:secret` in a Basic auth
# header) is matched anywhere, so a short one would mask unrelated text by chance.
MIN_FRAGMENT_LENGTH = 6
MAX_LINE_LENGTH = 16 * 1024
# Ends every piece of a split line but the last (U+21B5, the usual "line continues" glyph).
CONTINUED = "↵"
# A line still open (no newline yet) is split once it grows past this, so a program that never
# prints a newline cannot fill the worker's memory.
MAX_OPEN_LINE = 4 * MAX_LINE_LENGTH
# How many colour sequences of redrawn-away text are carried to the text that replaced it.
MAX_CARRIED_SGR = 8

# `\r`, and the erase-line sequences: ESC[K / ESC[0K (cursor to end), ESC[1K (start to
# cursor), ESC[2K (whole line). Our cursor is always at the end of the text (or at column 0
# right after a `\r`), so 1K and 2K clear the line and K / 0K clear it only after a `\r`.
REDRAW_RE = re.compile(r"(\r|\x1b\[[012]?K)")
ESCAPE_RE = re.compile(r"\x1b\[[0-9;:?]*[@-~]")
SGR_RE = re.compile(r"\x1b\[[0-9;:]*m")
SGR_RESETS = ("\x1b[m", "\x1b[0m")
# bash's `printf %q` escapes these with a backslash.
SHELL_SPECIAL_RE = re.compile(r"([ \t'\"\\|&;()<>{}\[\]$`*?!,^])")
PERCENT_RE = re.compile(r"%[0-9A-F]{2}")


def _url_forms(value: str) -> set[str]:
    forms = {
        quote(value, safe=""),  # encodeURIComponent-like, Python's strictest
        quote(value),  # Python's default keeps "/"
        quote(value, safe="-_.!~*'()"),  # JavaScript encodeURIComponent
        quote_plus(value, safe=""),  # form encoding (curl --data-urlencode, urlencode)
        quote_plus(value),
    }
    return forms | {PERCENT_RE.sub(lambda m: m.group(0).lower(), f) for f in forms}


def _base64_forms(raw: bytes) -> set[str]:
    forms = set()
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        for data in (raw, raw + b"\n"):  # `echo "$SECRET" | base64` encodes the newline too
            text = encode(data).decode()
            forms |= {text, text.rstrip("=")}
    # Inside longer base64 text the secret starts at any byte offset modulo 3: keep the
    # characters that depend on the secret's bits only (the GitHub runner's shifted encoders).
    for shift in (1, 2):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            text = encode(b"\0" * shift + raw).decode()
            start, end = -(-shift * 8 // 6), (shift + len(raw)) * 8 // 6
            fragment = text[start:end]
            if len(fragment) >= MIN_FRAGMENT_LENGTH:
                forms.add(fragment)
    text = base64.b64encode(raw).decode()
    fragment = text[: len(raw) * 8 // 6]  # the secret followed by more bytes
    if len(fragment) >= MIN_FRAGMENT_LENGTH:
        forms |= {fragment, fragment.replace("+", "-").replace("/", "_")}
    return forms


def encoded_forms(value: str) -> set[str]:
    """One value as programs commonly print it: raw; base64 (standard and URL-safe, padded and
    not, with the trailing newline `echo | base64` adds, and inside longer base64 text); hex
    (lower and upper case); URL-encoded (`quote`, `quote_plus`, JavaScript's
    `encodeURIComponent`, upper or lower case hex digits); JSON string escaping (with and
    without `\\uXXXX` for non-ASCII, with `\\/`); shell quoting (`shlex.quote`, bash `set -x`
    and `printf %q`); HTML/XML escaping."""
    raw = value.encode()
    forms = {value, raw.hex(), raw.hex().upper()}
    forms |= _base64_forms(raw)
    forms |= _url_forms(value)
    for ensure_ascii in (True, False):
        escaped = json.dumps(value, ensure_ascii=ensure_ascii)[1:-1]
        forms |= {escaped, escaped.replace("/", "\\/")}
    forms |= {
        shlex.quote(value),
        "'" + value.replace("'", "'\\''") + "'",
        SHELL_SPECIAL_RE.sub(r"\\\1", value),
        html.escape(value),
        html.escape(value, quote=False),
    }
    return forms


def secret_forms(values: Iterable[str]) -> list[str]:
    """Every text to mask for these secret values, longest first: each value, stripped, without
    surrounding quotes, and each of its lines, in each encoding `encoded_forms` lists. Forms
    shorter than MIN_SECRET_LENGTH are left out (they would mask ordinary text)."""
    forms: set[str] = set()
    for value in values:
        if not value:
            continue
        candidates = {value, value.strip(), value.strip().strip("\"'")}
        candidates |= {line.strip() for line in value.splitlines()}
        for candidate in candidates:
            if len(candidate) >= MIN_SECRET_LENGTH:
                forms |= encoded_forms(candidate)
    # Longest first, so a secret that contains another is masked whole.
    return sorted((f for f in forms if len(f) >= MIN_SECRET_LENGTH), key=len, reverse=True)


class Masker:
    """Replaces every form of the given secret values with MASK. Callable on any text that
    leaves a run: log lines, messages, reports."""

    def __init__(self, secrets: Iterable[str] = ()):
        self.secrets = [s for s in secrets if s]
        self.forms = secret_forms(self.secrets)
        self.longest = len(self.forms[0]) if self.forms else 0

    def __call__(self, text: str) -> str:
        for form in self.forms:
            if form in text:
                text = text.replace(form, MASK)
        return text


def _cut(line: str, limit: int) -> int:
    """Where the first piece of a too-long line ends: room for CONTINUED, never inside an
    escape sequence."""
    cut = limit - len(CONTINUED)
    escape = line.rfind("\x1b", max(cut - 32, 1), cut)
    if escape > 0 and not ESCAPE_RE.match(line, escape, cut):
        cut = escape
    return cut


def split_line(line: str, limit: int = MAX_LINE_LENGTH) -> list[str]:
    """A (masked) line cut into pieces of at most `limit` characters, each but the last ending
    with CONTINUED."""
    pieces = []
    while len(line) > limit:
        cut = _cut(line, limit)
        pieces.append(line[:cut] + CONTINUED)
        line = line[cut:]
    pieces.append(line)
    return pieces


def _carried(text: str, carry: str) -> str:
    """The colour state still in effect after `text` is redrawn away: its SGR sequences from
    the last reset on, after what was carried already, at most MAX_CARRIED_SGR of them."""
    if "\x1b" not in text:
        return carry
    sequences = SGR_RE.findall(carry + text)
    for i in range(len(sequences) - 1, -1, -1):
        if sequences[i] in SGR_RESETS:
            sequences = sequences[i:]
            break
    return "".join(sequences[-MAX_CARRIED_SGR:])


def redraw(text: str) -> tuple[str, bool]:
    """The final state of one line of terminal output holding `\\r` or erase-line sequences:
    text after a bare `\\r` replaces the line (GitLab's and GitHub's log viewers do the same),
    colours of the replaced text stay in effect. Returns (line, a `\\r` is still pending)."""
    state, carry, pending = "", "", False
    for i, token in enumerate(REDRAW_RE.split(text)):
        if not token:
            continue
        if i % 2 == 0:  # text
            if pending:
                carry, state, pending = _carried(state, carry), token, False
            else:
                state += token
        elif token == "\r":
            pending = True
        elif pending or token[-2] in "12":  # an erase-line sequence that clears the line
            carry, state = _carried(state, carry), ""
    return carry + state, pending


class LogWriter:
    """One run's log: `write()` / `line()` from the stage thread, `flush()` from the engine's
    supervising thread writes the waiting lines as one LogChunk and publishes it.

    When to flush is event-driven, so a line reaches the browser soon after it is printed while
    a program printing fast still makes few big chunks: the first line of a batch sets `wake`,
    and the batch is due (`due()`, `wait()`) once output has paused for `quiet` seconds, or
    `max_delay` seconds after its first line under steady output, or at `max_lines` lines.
    Measured by bench/run_page.py (line to browser) and bench/engine_log_throughput.py."""

    def __init__(
        self,
        execution: Execution,
        secrets: Iterable[str] = (),
        max_lines: int = 2000,
        max_delay: float = 0.1,
        quiet: float = 0.03,
    ):
        self.execution = execution
        self.mask = Masker(secrets)
        self.max_lines = max_lines
        self.max_delay = max_delay
        self.quiet = quiet
        # Set when a batch starts; the supervisor may set it too, to be woken from `wait()`.
        self.wake = threading.Event()
        self.stage: StageRun | None = None
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._first_at = 0.0
        self._last_at = 0.0
        self._partial = ""
        self._decoders: dict[str, codecs.IncrementalDecoder] = {}
        last = LogChunk.objects.filter(execution=execution).aggregate(m=Max("seq"))["m"]
        self.next_seq = 0 if last is None else last + 1

    def add_secrets(self, values: Iterable[str]) -> None:
        self.mask = Masker([*self.mask.secrets, *values])

    def set_stage(self, stage: StageRun) -> None:
        if self.stage is not None:  # lines written before the first stage go with it
            self.flush()
        self.stage = stage

    def write(self, data: str | bytes, stream: str = "stdout") -> None:
        """Appends a program's output as it came: bytes are decoded with `stream`'s own
        incremental UTF-8 decoder; a trailing open line waits for its end (or the final
        flush)."""
        with self._lock:
            if isinstance(data, bytes):
                data = self._decoder(stream).decode(data)
            self._feed(data)

    def line(self, text: str) -> None:
        """Appends one or more whole lines of the product's own (an open line ends first)."""
        with self._lock:
            self._end_open_line()
            self._add(text.splitlines() or [""])

    def _decoder(self, stream: str) -> codecs.IncrementalDecoder:
        decoder = self._decoders.get(stream)
        if decoder is None:
            decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
            self._decoders[stream] = decoder
        return decoder

    def _feed(self, text: str) -> None:
        if not text:
            return
        joined = self._partial + text
        *complete, partial = joined.split("\n")
        if "\r" in joined or ("\x1b" in joined and REDRAW_RE.search(joined)):  # redraws
            complete = [redraw(line)[0] if REDRAW_RE.search(line) else line for line in complete]
            partial, pending = redraw(partial)
            partial += "\r" if pending else ""
        self._partial = partial
        if complete:
            self._add(complete)
        if len(self._partial) > MAX_OPEN_LINE:
            self._split_open_line()

    def _split_open_line(self) -> None:
        # Masked before the split, and the tail kept open is at least as long as the longest
        # secret form: a secret still being written cannot straddle a piece already stored.
        text = self.mask(self._partial)
        keep = max(self.mask.longest, 1)
        pieces = []
        while len(text) - MAX_LINE_LENGTH >= keep:
            cut = _cut(text, MAX_LINE_LENGTH)
            pieces.append(text[:cut] + CONTINUED)
            text = text[cut:]
        self._partial = text
        self._add(pieces)

    def _end_open_line(self) -> None:
        for stream, decoder in self._decoders.items():
            self._feed(decoder.decode(b"", final=True))
            self._decoders[stream] = codecs.getincrementaldecoder("utf-8")(errors="replace")
        if self._partial.rstrip("\r"):
            self._add([self._partial.rstrip("\r")])
        self._partial = ""

    def _add(self, lines: list[str]) -> None:
        now = time.monotonic()
        if not self._lines:
            self._first_at = now
            self.wake.set()
        self._last_at = now
        self._lines += lines

    def _due_at(self) -> float | None:
        """When the waiting lines are due (monotonic seconds); None if none wait. Call with
        the lock held."""
        if not self._lines:
            return None
        if len(self._lines) >= self.max_lines:
            return self._first_at
        return min(self._last_at + self.quiet, self._first_at + self.max_delay)

    def due(self) -> bool:
        """Whether the waiting lines should be flushed now."""
        with self._lock:
            due_at = self._due_at()
        return due_at is not None and time.monotonic() >= due_at

    def wait(self, timeout: float, until: threading.Event | None = None) -> bool:
        """Sleeps until the waiting lines are due, a batch starts, `wake` is set, or `timeout`
        seconds pass, whichever is first; returns `due()`. The supervising thread calls it in a
        loop instead of sleeping a fixed tick. Whoever sets `until` (the stage thread, when it
        ends) sets `wake` after it: it is read after `wake` is cleared, so no wake-up is lost."""
        self.wake.clear()  # before reading the state: a line added after this sets it again
        with self._lock:
            due_at = self._due_at()
        now = time.monotonic()
        if (due_at is not None and now >= due_at) or (until is not None and until.is_set()):
            return self.due()
        delay = timeout if due_at is None else min(timeout, due_at - now)
        if delay > 0:
            self.wake.wait(delay)
        return self.due()

    def flush(self, final: bool = False) -> None:
        with self._lock:
            if final:
                self._end_open_line()
            lines, self._lines = self._lines, []
        if not lines or self.stage is None:
            return
        chunk = LogChunk.objects.create(
            execution_id=self.execution.pk,
            stage_run=self.stage,
            seq=self.next_seq,
            text=self.render(lines),
        )
        self.next_seq += 1
        publish_log(chunk)

    def render(self, lines: list[str]) -> str:
        """The chunk text of these lines: masked over the joined text (a secret may span
        lines), then long lines split. Masking comes first, so no split cuts a secret."""
        text = self.mask("\n".join(lines))
        if len(text) > MAX_LINE_LENGTH and any(len(line) > MAX_LINE_LENGTH for line in lines):
            text = "\n".join(
                piece
                for line in text.split("\n")
                for piece in (split_line(line) if len(line) > MAX_LINE_LENGTH else (line,))
            )
        return text + "\n"
