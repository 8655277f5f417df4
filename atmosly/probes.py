"""Short checks that talk to the outside (git ls-remote, a registry login, a cluster's API) run
here, off the web request thread, and leave their result in the cache for the page to poll.

Under ASGI every synchronous view shares one thread, so a 20 s git timeout in a view would stall
every page. A probe returns an id at once; `probe_result(id)` says running, or done with a
summary and items, or the error. Results live PROBE_TTL seconds: with Redis configured
(settings.CACHES) every web process sees them, otherwise the process that started the probe.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.core.cache import cache
from django.db import close_old_connections

log = logging.getLogger(__name__)

PROBE_TTL = 120  # seconds a result (or a run in progress) stays readable
_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="probe")


class ProbeError(Exception):
    """The check failed in a way the user should read (the exact message is shown)."""


def start_probe(
    fn: Callable[..., dict[str, Any]],
    *args: Any,
    owner: int,
    key: str | None = None,
    ttl: int = PROBE_TTL,
) -> str:
    """Runs `fn(*args)` in the pool; returns the probe id. With `key`, a result (or run) still
    in the cache is reused instead of starting again ("cached briefly"). `fn` returns
    `{"summary": str, "items": [str, ...]}` or raises; its message becomes the error."""
    probe_id = key or secrets.token_urlsafe(18)
    cache_key = f"probe:{probe_id}"
    if key and cache.get(cache_key) is not None:
        return probe_id
    cache.set(cache_key, {"state": "running", "owner": owner}, ttl)
    _pool.submit(_run, cache_key, owner, ttl, fn, args)
    return probe_id


def _run(cache_key: str, owner: int, ttl: int, fn: Callable, args: tuple) -> None:
    try:
        value = fn(*args)
        result = {"state": "done", "ok": True, "owner": owner, **value}
    except Exception as exc:  # every failure is shown to the user, next to the field
        if not isinstance(exc, ProbeError) and exc.__class__.__module__.startswith("builtins"):
            log.exception("probe failed")
        result = {"state": "done", "ok": False, "owner": owner, "error": str(exc) or repr(exc)}
    finally:
        close_old_connections()
    cache.set(cache_key, result, ttl)


def probe_result(probe_id: str, owner: int | None = None) -> dict[str, Any] | None:
    """The probe's state, or None if unknown, expired or (with `owner`) someone else's."""
    result = cache.get(f"probe:{probe_id}")
    if result is None or (owner is not None and result.get("owner") != owner):
        return None
    return result
