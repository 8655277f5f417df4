"""HTTP through Django, websockets (/ws/executions/<id>/, /ws/dashboard/) through Channels, both authenticated
by the Django session."""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path
from typing import Any

import django
from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler

from atmosly.checks import refuse_development_keys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "atmosly.settings")
refuse_development_keys()


class HTTPHandler(ASGIHandler):
    """Django's ASGI handler, but webhook deliveries (/hooks/) all run in one long-lived thread.

    Django runs each request's sync code in a thread made for that request (asgiref's
    ThreadSensitiveContext), and its database connections belong to their thread: every request
    opens a new connection and builds a new database wrapper, which `CONN_MAX_AGE` cannot keep.
    For a delivery that was a fifth of the server's CPU (27.4 ms a push against 22.2 ms here,
    300 pushes one after another, bench/README.md). Deliveries are short, never wait on the
    network and take turns on SQLite's one writer anyway, so they share asgiref's single sync
    thread and its kept connection; every other request keeps a thread of its own, so a slow
    page holds up no other."""

    def load_middleware(self, is_async: bool = False) -> None:
        """The middleware chain in sync mode, entered with one hop to a sync thread.

        Every view here is sync, and WhiteNoise and our BodyLimitMiddleware are sync-only, so in
        the async mode Django's ASGI handler picks, a request crossed between the event loop and
        a sync thread well over a dozen times: into BodyLimit and back out to the event loop
        below WhiteNoise, once for each `process_request` and `process_response` of the
        MiddlewareMixin middleware (their async path wraps each), once for each sync
        `process_view`, once for the view; each a thread wake-up and a GIL hand-over (py-spy on
        the webhook benchmark, bench/README.md). The same middleware, in the same order, runs as
        under WSGI, behind one crossing."""
        super().load_middleware(is_async=False)
        # django-stubs leaves `_middleware_chain` (set in load_middleware) untyped.
        chain = self._middleware_chain  # type: ignore[has-type]
        self._middleware_chain = sync_to_async(chain, thread_sensitive=True)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/hooks/"):
            await self.handle(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


django.setup(set_prefix=False)
django_asgi_app = HTTPHandler()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.urls import path  # noqa: E402

from executions.consumers import DashboardConsumer, ExecutionConsumer  # noqa: E402

# Channels routes ASGI apps with Django's path(); django-stubs types path() for views only.
websocket_urlpatterns: list[Any] = [
    path("ws/executions/<int:pk>/", ExecutionConsumer.as_asgi()),  # type: ignore[arg-type]
    path("ws/dashboard/", DashboardConsumer.as_asgi()),  # type: ignore[arg-type]
]

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)


def tune_server_interpreter() -> None:
    """The web server's interpreter, tuned for answering while a request's sync code runs.

    Measured with bench/webhooks_latency.py at 50 pushes/s (bench/README.md, webhooks, 2 Dec):
    - The event-loop thread (accepting, reading, answering) waited up to CPython's default
      5 ms switch interval for the GIL each time the sync thread held it, so at about 80% of a
      core requests queued behind each other: p95 38-431 ms from run to run with the freeze
      below alone, 51 and 122 ms with the 1 ms interval alone, 29-47 ms in six runs with both.
    - Everything loaded at start-up moves out of the collector's reach: full collections then
      scan what requests left behind only (pauses of 190-280 ms before, 15-70 ms after)."""
    sys.setswitchinterval(0.001)
    gc.collect()  # start-up's own garbage is freed, not frozen
    gc.freeze()


def is_daphne_process() -> bool:
    """True in daphne's own process: its console script, or `python -m daphne`."""
    program = Path(sys.argv[0])
    return program.name == "daphne" or (
        program.name == "__main__.py" and program.parent.name == "daphne"
    )


# This module is the one start-up hook daphne gives; tests and tools that import `application`
# keep the interpreter's defaults.
if is_daphne_process():
    tune_server_interpreter()
