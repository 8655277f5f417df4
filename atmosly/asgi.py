"""HTTP through Django, websockets (/ws/executions/<id>/, /ws/dashboard/) through Channels, both authenticated
by the Django session."""

from __future__ import annotations

import os
from typing import Any

import django
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
