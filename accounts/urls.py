from __future__ import annotations

from django.urls import include, path

from accounts import views

urlpatterns = [
    path("tokens/", views.tokens, name="tokens"),
    # Sign-in, sign-out, password change and reset: Django's own views and forms.
    path("", include("django.contrib.auth.urls")),
]
