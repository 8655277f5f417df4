"""The Tokens page: make (or replace) and revoke the user's API token."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.views.decorators.http import require_http_methods

from accounts.services import check_regenerate_token, do_revoke_token, token_of
from atmosly.htmx import render_page_or_partial


@login_required
@require_http_methods(["GET", "POST"])
def tokens(request):
    """GET: whether a token exists and since when. POST `action=create` makes a new one (showing
    its key this once) and revokes the old; `action=revoke` deletes it."""
    new_key = ""
    if request.method == "POST":
        if request.POST.get("action") == "revoke":
            do_revoke_token(request.user)
        else:
            new_key = check_regenerate_token(request.user).key
    context = {"token": token_of(request.user), "new_key": new_key}
    return render_page_or_partial(
        request, "accounts/tokens.html", "accounts/htmx/_token.html", context
    )
