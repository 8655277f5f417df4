"""HTTP through Django, websockets (/ws/executions/<id>/, /ws/dashboard/) through Channels, both authenticated
by the Django session."""

from __future__ import annotations

import os

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

websocket_urlpatterns = [
    path("ws/executions/<int:pk>/", ExecutionConsumer.as_asgi()),
    path("ws/dashboard/", DashboardConsumer.as_asgi()),
]

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
