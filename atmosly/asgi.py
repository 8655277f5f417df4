"""HTTP through Django, websockets (/ws/executions/<id>/, /ws/dashboard/) through Channels, both authenticated
by the Django session."""

from __future__ import annotations

import os
from typing import Any

from django.core.asgi import get_asgi_application

from atmosly.checks import refuse_development_keys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "atmosly.settings")
refuse_development_keys()
django_asgi_app = get_asgi_application()

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
