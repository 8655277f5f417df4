from __future__ import annotations

from django.urls import path

from integrations.webhooks import api

urlpatterns = [
    path("workflows/<int:pk>/webhook/", api.WorkflowWebhook.as_view(), name="workflow-webhook"),
    path(
        "workflows/<int:pk>/webhook/rotate-secret/",
        api.RotateSecret.as_view(),
        name="workflow-webhook-rotate-secret",
    ),
    path(
        "workflows/<int:pk>/webhook-deliveries/",
        api.WorkflowDeliveryList.as_view(),
        name="workflow-webhook-deliveries",
    ),
    path(
        "projects/<int:pk>/webhook-deliveries/",
        api.ProjectDeliveryList.as_view(),
        name="project-webhook-deliveries",
    ),
    path(
        "webhook-deliveries/<int:pk>/",
        api.DeliveryDetail.as_view(),
        name="webhook-delivery-detail",
    ),
    path(
        "webhook-deliveries/<int:pk>/redeliver/",
        api.Redeliver.as_view(),
        name="webhook-delivery-redeliver",
    ),
]
