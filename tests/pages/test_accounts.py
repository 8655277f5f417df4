"""Sign-in for every active user, sign-out, password change and reset, the Tokens page, and a
header that shows only what the user may open."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client
from rest_framework.authtoken.models import Token

pytestmark = pytest.mark.django_db


def sign_in(username: str, password: str = "password") -> tuple[Client, object]:
    client = Client()
    response = client.post("/accounts/login/", {"username": username, "password": password})
    return client, response


@pytest.mark.parametrize("name", ["alice", "bob", "carol", "dave", "frank"])
def test_every_active_user_signs_in_without_staff(users, name):
    assert not users[name].is_staff
    client, response = sign_in(name)
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/").status_code in (200, 403)  # frank has no role: 403, but signed in
    assert "_auth_user_id" in client.session


def test_inactive_user_and_wrong_password_are_refused(users):
    users["bob"].is_active = False
    users["bob"].save()
    _, response = sign_in("bob")
    assert response.status_code == 200 and b"Please enter a correct username" in response.content
    _, response = sign_in("carol", "nope")
    assert response.status_code == 200 and b"Please enter a correct username" in response.content


def test_pages_send_strangers_to_the_product_sign_in(users):
    response = Client().get("/approvals/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


def test_sign_out_is_a_post(users):
    client, _ = sign_in("dave")
    assert client.get("/accounts/logout/").status_code == 405
    response = client.post("/accounts/logout/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    assert "_auth_user_id" not in client.session


def test_password_change(users):
    client, _ = sign_in("carol")
    response = client.post(
        "/accounts/password_change/",
        {"old_password": "wrong", "new_password1": "x", "new_password2": "y"},
    )
    assert response.status_code == 200
    assert b'data-testid="error-old_password"' in response.content
    response = client.post(
        "/accounts/password_change/",
        {
            "old_password": "password",
            "new_password1": "Tall-Ships-42",
            "new_password2": "Tall-Ships-42",
        },
    )
    assert response.status_code == 302
    _, response = sign_in("carol", "Tall-Ships-42")
    assert response.status_code == 302


def test_password_reset_by_email(users):
    response = Client().post("/accounts/password_reset/", {"email": "dave@example.org"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["dave@example.org"]
    link = re.search(r"http://\S+/accounts/reset/\S+/", mail.outbox[0].body).group(0)
    path = link.split("testserver", 1)[1]
    client = Client()
    form = client.get(path, follow=True)
    assert b"Choose a new password" in form.content
    response = client.post(
        form.redirect_chain[-1][0],
        {"new_password1": "Quiet-Harbour-7", "new_password2": "Quiet-Harbour-7"},
    )
    assert response.status_code == 302
    _, response = sign_in("dave", "Quiet-Harbour-7")
    assert response.status_code == 302


def nav(client) -> str:
    html = client.get("/accounts/tokens/").content.decode()
    return html.split('<nav aria-label="Main">', 1)[1].split("</nav>", 1)[0]


def test_header_shows_only_what_the_user_may_open(users):
    viewer = nav(sign_in("carol")[0])
    assert "Analytics" in viewer and "Waiting for me" not in viewer and "Admin" not in viewer
    approver = nav(sign_in("dave")[0])
    assert "Waiting for me" in approver
    nobody = nav(sign_in("frank")[0])
    assert "Analytics" not in nobody and "Projects" not in nobody
    assert "Tokens" in nobody and "Sign out" in nobody


def test_tokens_page_creates_once_shown_key_and_revokes(users):
    client, _ = sign_in("bob")
    page = client.get("/accounts/tokens/").content.decode()
    assert "You have no API token." in page
    page = client.post("/accounts/tokens/", {"action": "create"}).content.decode()
    key = Token.objects.get(user=users["bob"]).key
    assert key in page
    assert key not in client.get("/accounts/tokens/").content.decode()  # shown once only
    # The key works on the API, and a new one replaces it.
    assert Client(HTTP_AUTHORIZATION=f"Token {key}").get("/api/projects/").status_code == 200
    client.post("/accounts/tokens/", {"action": "create"}, HTTP_HX_REQUEST="true")
    assert Token.objects.get(user=users["bob"]).key != key
    refused = Client(HTTP_AUTHORIZATION=f"Token {key}").get("/api/projects/")
    assert refused.status_code == 403 and "Invalid token" in refused.json()["detail"]
    client.post("/accounts/tokens/", {"action": "revoke"})
    assert not Token.objects.filter(user=users["bob"]).exists()


def test_htmx_request_gets_the_partial(users):
    client, _ = sign_in("bob")
    response = client.post("/accounts/tokens/", {"action": "create"}, HTTP_HX_REQUEST="true")
    assert b"<html" not in response.content and b'data-testid="new-token"' in response.content
