"""The one place that decides whether a request gets a page or an HTMX partial (NetBox habit).

Partials live in ``templates/<app>/htmx/_*.html``; a boosted request wants the whole page.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def htmx_partial(request: HttpRequest) -> bool:
    """True when the request came from an hx-* attribute and wants only a fragment."""
    htmx = getattr(request, "htmx", None)
    return htmx is not None and bool(htmx) and not htmx.boosted


def render_page_or_partial(
    request: HttpRequest,
    page: str,
    partial: str,
    context: dict,
    status: int = 200,
) -> HttpResponse:
    """Renders `partial` for an HTMX request, `page` (which includes the partial) otherwise."""
    template = partial if htmx_partial(request) else page
    return render(request, template, context, status=status)
