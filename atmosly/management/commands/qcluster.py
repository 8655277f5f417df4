"""django-q2's `qcluster` (the worker), refusing to start with the development keys."""

from __future__ import annotations

from typing import Any

from django_q.management.commands.qcluster import Command as QclusterCommand

from atmosly.checks import refuse_development_keys


class Command(QclusterCommand):
    def handle(self, *args: Any, **options: Any) -> None:
        refuse_development_keys()
        return super().handle(*args, **options)
