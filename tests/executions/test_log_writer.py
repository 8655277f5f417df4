"""The log writer through its public methods (`write`, `line`, `flush`), with examples and with
property-based tests (hypothesis): random secrets in random encodings, written in pieces split
at random byte positions (also inside a character), `\\r` redraws and multi-byte text. For
every input no covered form of a secret survives in the stored log, and the text is what a
terminal (as GitHub's and GitLab's log viewers draw it) shows."""

from __future__ import annotations

import base64
import html
import itertools
import json
import re
import shlex
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from executions.logs import CONTINUED, MAX_LINE_LENGTH, MAX_OPEN_LINE, LogWriter, Masker
from executions.services import do_create_execution

pytestmark = pytest.mark.django_db

PROPERTY = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture
def execution(workflow):
    return do_create_execution(workflow, ref="main", trigger="manual")


def stored(execution, writes, secrets=(), lines_between=False) -> str:
    """Feeds `writes` ((data, stream) pairs) to a new writer, flushes it, and returns the text
    it stored (only the chunks it wrote)."""
    writer = LogWriter(execution, secrets=secrets)
    first = writer.next_seq
    writer.set_stage(execution.stages.first())
    for i, (data, stream) in enumerate(writes):
        writer.write(data, stream)
        if lines_between and i % 7 == 6:
            writer.flush()  # a flush between writes must not cut anything
    writer.flush(final=True)
    chunks = execution.log_chunks.filter(seq__gte=first).order_by("seq")
    return "".join(chunks.values_list("text", flat=True))


def split_at(data: bytes, points: list[int]) -> list[bytes]:
    cuts = sorted({p % (len(data) + 1) for p in points})
    edges = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges) if b > a]


# --- examples ---------------------------------------------------------------------------


def test_character_split_across_writes_per_stream(execution):
    writes = [(b"caf\xc3", "stdout"), (b"na\xc3", "stderr"), (b"\xa9\n", "stdout")]
    writes += [(b"\xaf\xff!\n", "stderr")]
    assert stored(execution, writes) == "cafnaé\nï\ufffd!\n"  # one line, as on a terminal
    # A character still incomplete at the end is replaced, never an error.
    assert stored(execution, [(b"end \xe2\x82", "stdout")]) == "end \ufffd\n"


def test_progress_bar_keeps_its_last_state(execution):
    redraws = [f"\rDownloading {i * 100 // 1283:3d}%".encode() for i in range(1284)]
    text = stored(execution, [(r, "stdout") for r in redraws] + [(b"\n", "stdout")])
    assert text == "Downloading 100%\n"


@pytest.mark.parametrize(
    ("printed", "shown"),
    [
        ("a\r\nb\n", "a\nb\n"),  # \r\n is a newline
        ("a\r\r\nb\n", "a\nb\n"),
        ("50%\r100%\r\n", "100%\n"),
        ("50%\r100%\r", "100%\n"),  # a trailing \r erases nothing
        ("Hello\rworld\n", "world\n"),  # what GitLab's viewer shows
        ("50%\r\x1b[K100%\n", "100%\n"),
        ("50%\x1b[2K\r100%\n", "100%\n"),
        ("abc\x1b[2K\n", "\n"),
        ("ok\x1b[K\n", "ok\n"),  # erase to the end, at the end: nothing
        ("\x1b[32m50%\r100%\x1b[0m\n", "\x1b[32m100%\x1b[0m\n"),  # colour stays in effect
        ("\x1b[31mred\x1b[0m \x1b[1mbold\x1b[22m\n", "\x1b[31mred\x1b[0m \x1b[1mbold\x1b[22m\n"),
    ],
)
def test_redraws_and_colours(execution, printed, shown):
    assert stored(execution, [(printed.encode(), "stdout")]) == shown
    # The same, one byte per write.
    assert stored(execution, [(bytes([b]), "stdout") for b in printed.encode()]) == shown


def test_long_line_split_with_a_marker_and_masked_first(execution):
    secret = "s3cr3t-at-the-cap"
    line = "x" * (MAX_LINE_LENGTH - 5) + secret + "y" * 40000
    text = stored(execution, [(line.encode() + b"\n", "stdout")], secrets=[secret])
    pieces = text.split("\n")[:-1]
    assert all(len(p) <= MAX_LINE_LENGTH for p in pieces)
    assert all(p.endswith(CONTINUED) for p in pieces[:-1])
    assert "".join(p.removesuffix(CONTINUED) for p in pieces) == line.replace(secret, "***")
    assert "s3cr" not in text and "t-the-cap" not in text


def test_open_line_without_newline_is_split_and_masked(execution):
    secret = "another-s3cret-value"
    data = ("z" * (MAX_OPEN_LINE + 7) + secret + "z" * 100).encode()
    writes = [(data[i : i + 1000], "stdout") for i in range(0, len(data), 1000)]
    text = stored(execution, writes, secrets=[secret])
    assert secret[:6] not in text and secret[-6:] not in text
    assert text.replace(CONTINUED + "\n", "") == data.decode().replace(secret, "***") + "\n"


def test_url_encoded_and_hex_forms_are_masked():
    mask = Masker(["p@ss/w0rd+&=?x"])
    assert mask("p%40ss%2Fw0rd%2B%26%3D%3Fx") == "***"
    assert mask("x=p%40ss%2Fw0rd%2B%26%3D%3Fx&y") == "x=***&y"
    assert mask("hex 704073732f773072642b263d3f78") == "hex ***"
    assert mask("HEX 704073732F773072642B263D3F78") == "HEX ***"


def test_line_ends_an_open_line_first(execution):
    writer = LogWriter(execution)
    writer.set_stage(execution.stages.first())
    writer.write(b"no newline yet")
    writer.line("ERROR: the script failed")
    writer.flush(final=True)
    text = "".join(execution.log_chunks.order_by("seq").values_list("text", flat=True))
    assert text == "no newline yet\nERROR: the script failed\n"


# --- properties -------------------------------------------------------------------------

SECRET_ALPHABET = st.characters(
    blacklist_categories=("Cs", "Cc", "Zl", "Zp"), blacklist_characters="*"
)
TEXT_ALPHABET = st.characters(blacklist_categories=("Cs", "Cc"))


def echo_base64(value: str) -> str:
    return base64.b64encode(value.encode() + b"\n").decode()


def basic_auth(value: str) -> str:
    return "Authorization: Basic " + base64.b64encode(b"deploy:" + value.encode()).decode()


ENCODINGS = {
    "raw": lambda v: v,
    "base64": lambda v: base64.b64encode(v.encode()).decode(),
    "base64-unpadded": lambda v: base64.b64encode(v.encode()).decode().rstrip("="),
    "base64-url": lambda v: base64.urlsafe_b64encode(v.encode()).decode(),
    "base64-url-unpadded": lambda v: base64.urlsafe_b64encode(v.encode()).decode().rstrip("="),
    "echo | base64": echo_base64,
    "hex": lambda v: v.encode().hex(),
    "HEX": lambda v: v.encode().hex().upper(),
    "quote": lambda v: quote(v, safe=""),
    "quote-default": quote,
    "quote_plus": quote_plus,
    "quote-lower": lambda v: re.sub(
        "%[0-9A-F]{2}", lambda m: m.group(0).lower(), quote(v, safe="")
    ),
    "basic-auth": basic_auth,
    "json": lambda v: json.dumps(v),
    "json-utf8": lambda v: json.dumps(v, ensure_ascii=False),
    "shlex.quote": shlex.quote,
    "html": html.escape,
}


@PROPERTY
@given(
    secret=st.text(SECRET_ALPHABET, min_size=5, max_size=40).filter(lambda s: s.strip() == s),
    encoding=st.sampled_from(sorted(ENCODINGS)),
    before=st.text(TEXT_ALPHABET, max_size=30),
    after=st.text(TEXT_ALPHABET, max_size=30),
    points=st.lists(st.integers(min_value=0, max_value=500), max_size=6),
    stderr=st.booleans(),
)
def test_no_secret_survives_in_any_covered_encoding(
    execution, secret, encoding, before, after, points, stderr
):
    encoded = ENCODINGS[encoding](secret)
    data = (before + encoded + after + "\n").encode()
    stream = "stderr" if stderr else "stdout"
    text = stored(execution, [(piece, stream) for piece in split_at(data, points)], [secret])
    assert encoded not in text
    assert secret not in text
    assert "***" in text


@PROPERTY
@given(
    secret=st.text(SECRET_ALPHABET, min_size=3, max_size=30).filter(lambda s: s.strip() == s),
    position=st.integers(min_value=0, max_value=3 * MAX_LINE_LENGTH),
    length=st.integers(min_value=1, max_value=3 * MAX_LINE_LENGTH),
    write_size=st.integers(min_value=500, max_value=20000),
    newline=st.booleans(),
)
def test_long_lines_never_cut_and_never_show_part_of_a_secret(
    execution, secret, position, length, write_size, newline
):
    position = min(position, length)
    line = "." * position + secret + "-" * (length - position)
    data = (line + ("\n" if newline else "")).encode()
    writes = [(data[i : i + write_size], "stdout") for i in range(0, len(data), write_size)]
    text = stored(execution, writes, [secret], lines_between=True)
    pieces = text.split("\n")[:-1]
    assert all(len(piece) <= MAX_LINE_LENGTH for piece in pieces)
    assert "".join(p.removesuffix(CONTINUED) for p in pieces) == line.replace(secret, "***")
    assert secret not in text.replace(CONTINUED + "\n", "")


# Terminal output: text (any script, multi-byte included), `\r`, `\n` and `\r\n`.
SEGMENT = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=12),
    st.sampled_from(["\r", "\n", "\r\n"]),
)


def terminal(printed: str) -> str:
    """Reference model: each line's text after its last `\\r` that was followed by text."""
    lines = printed.split("\n")
    shown = [next((s for s in reversed(line.split("\r")) if s), "") for line in lines[:-1]]
    if lines[-1].replace("\r", ""):
        shown.append(next(s for s in reversed(lines[-1].split("\r")) if s))
    return "".join(line + "\n" for line in shown)


@PROPERTY
@given(
    segments=st.lists(SEGMENT, max_size=40),
    points=st.lists(st.integers(min_value=0, max_value=1000), max_size=12),
)
def test_text_is_decoded_and_drawn_as_a_terminal_would(execution, segments, points):
    printed = "".join(segments)
    writes = [(piece, "stdout") for piece in split_at(printed.encode(), points)]
    assert stored(execution, writes, lines_between=True) == terminal(printed)


@PROPERTY
@given(
    out=st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=30),
    err=st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=30),
    order=st.lists(st.booleans(), max_size=60),
)
def test_each_stream_has_its_own_decoder(execution, out, err, order):
    """stdout and stderr interleaved at arbitrary byte positions: every character of both comes
    out whole (same characters, none replaced)."""
    pending = {"stdout": list(out.encode()), "stderr": list(err.encode())}
    writes = []
    for use_err in order:
        name = "stderr" if use_err else "stdout"
        if pending[name]:
            writes.append((bytes([pending[name].pop(0)]), name))
    writes += [(bytes(rest), name) for name, rest in pending.items() if rest]
    text = stored(execution, writes)
    assert "\ufffd" not in text
    assert sorted(text.rstrip("\n")) == sorted(out + err)
