"""The webhook doors' URLs; atmosly/urls.py mounts `hook_urls` at /hooks/ and `api_urls` at /api/.

The names (`webhook-receive`, `workflow-webhook`, ...) are the ones `reverse()` and the API schema
use."""

from __future__ import annotations

from django.urls import path, re_path

from triggers import webhook_api, webhook_views

# The trailing slash is optional: a provider does not follow the redirect APPEND_SLASH makes.
hook_urls = [
    re_path(
        r"^(?P<provider>[a-z]+)/(?P<hook_id>[^/]+)/?$",
        webhook_views.receive,
        name="webhook-receive",
    ),
]

api_urls = [
    path(
        "workflows/<int:pk>/webhook/",
        webhook_api.WorkflowWebhook.as_view(),
        name="workflow-webhook",
    ),
    path(
        "workflows/<int:pk>/webhook/rotate-secret/",
        webhook_api.RotateSecret.as_view(),
        name="workflow-webhook-rotate-secret",
    ),
    path(
        "workflows/<int:pk>/webhook-deliveries/",
        webhook_api.WorkflowDeliveryList.as_view(),
        name="workflow-webhook-deliveries",
    ),
    path(
        "projects/<int:pk>/webhook-deliveries/",
        webhook_api.ProjectDeliveryList.as_view(),
        name="project-webhook-deliveries",
    ),
    path(
        "webhook-deliveries/<int:pk>/",
        webhook_api.DeliveryDetail.as_view(),
        name="webhook-delivery-detail",
    ),
    path(
        "webhook-deliveries/<int:pk>/redeliver/",
        webhook_api.Redeliver.as_view(),
        name="webhook-delivery-redeliver",
    ),
]
