"""What the workflow configuration announces to the apps above it (they connect in their
`AppConfig.ready`; workflows never imports them)."""

from __future__ import annotations

from django.dispatch import Signal

# A deploy step's designated approvers changed: `step` (WorkflowEnvironment), `before` and
# `after` ({"users": [...], "groups": [...]}), `user` who changed them (or None). Sent inside
# the saving transaction, so the audit rows commit with the change.
approvers_changed = Signal()
