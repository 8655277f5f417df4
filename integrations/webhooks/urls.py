from __future__ import annotations

from django.urls import re_path

from integrations.webhooks import views

# The trailing slash is optional: a provider does not follow the redirect APPEND_SLASH makes.
urlpatterns = [
    re_path(r"^(?P<provider>[a-z]+)/(?P<hook_id>[^/]+)/?$", views.receive, name="webhook-receive"),
]
