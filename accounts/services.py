"""API tokens of a user: the same DRF token `POST /api/auth/token/` hands out (one per user).

The key is shown once, right after it is made; afterwards the page only says when it was made.
"""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import PermissionDenied
from django.db import transaction
from rest_framework.authtoken.models import Token


def check_regenerate_token(user: User | AnonymousUser) -> Token:
    """Refuses inactive users, then replaces the user's token (the old key stops working)."""
    if not isinstance(user, User) or not user.is_active:  # AnonymousUser: not signed in
        raise PermissionDenied("Only an active, signed-in user can have an API token.")
    return do_regenerate_token(user)


@transaction.atomic
def do_regenerate_token(user: User) -> Token:
    Token.objects.filter(user=user).delete()
    return Token.objects.create(user=user)


def do_revoke_token(user: User) -> bool:
    """Deletes the user's token; returns whether there was one."""
    deleted, _ = Token.objects.filter(user=user).delete()
    return deleted > 0


def token_of(user: User) -> Token | None:
    return Token.objects.filter(user=user).first()
