"""The delivery log in the admin: listed, filtered, searched, shown, never edited."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from integrations.models import WebhookDelivery
from tests.webhooks.helpers import deliver, fixture

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(db) -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("root", "root@example.org", "pw"))
    return client


def test_delivery_admin_lists_filters_searches_and_shows(admin_client, github_hook):
    deliver(github_hook, "github", fixture("github_push"))
    deliver(github_hook, "github", fixture("github_push"), secret="wrong")
    delivery = WebhookDelivery.objects.get(outcome="triggered")
    url = "/admin/integrations/webhookdelivery/"

    listing = admin_client.get(url)
    assert listing.status_code == 200
    assert b"0d1a26e67d8f" in listing.content and b"does not match" in listing.content
    assert admin_client.get(url, {"outcome": "rejected"}).context["cl"].result_count == 1
    assert admin_client.get(url, {"q": "0d1a26e67d8f"}).context["cl"].result_count == 1

    page = admin_client.get(f"{url}{delivery.pk}/change/")
    assert page.status_code == 200
    assert b"refs/heads/main" in page.content  # the payload
    assert b"demo/shop/ci #1" in page.content  # the run it started
    assert b"X-Hub-Signature-256" not in page.content
    assert admin_client.get(f"{url}add/").status_code == 403
    assert admin_client.post(f"{url}{delivery.pk}/change/", {}).status_code == 403


def test_endpoint_and_claim_admin_pages(admin_client, github_hook):
    deliver(github_hook, "github", fixture("github_push"))
    for name in ("webhookendpoint", "triggeredcommit"):
        assert admin_client.get(f"/admin/integrations/{name}/").status_code == 200
