"""One masking for every text that leaves a run: status reasons, stage errors, reports and
mails pass the log's `Masker` where they are written, so the API, the pages, the admin, the
websocket, the CLI and exports (which read what was written) never see a secret.

The worker that runs an execution registers its log's masker, which knows every secret of the
run, those fetched from a secret manager at run start included. Any other process (the web
server deciding an approval, a terminate, recovery) masks with the secrets stored in the
database: the workflow's secret variables and the service's and registry's credentials.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from executions.logs import Masker
from executions.models import Execution

if TYPE_CHECKING:
    from workflows.models import Workflow

# execution pk → the masking of the worker running it in this process.
_running: dict[int, Callable[[str], str]] = {}


def register(execution_id: int, mask: Callable[[str], str]) -> None:
    _running[execution_id] = mask


def unregister(execution_id: int) -> None:
    _running.pop(execution_id, None)


def stored_secrets(workflow: Workflow) -> list[str]:
    """Values the database keeps encrypted for this workflow's runs (decrypted here)."""
    values = [workflow.service.git_token, workflow.service.git_ssh_key]
    if workflow.registry is not None:  # no query when registry_id is None
        values.append(workflow.registry.password)
    values += [
        v.secret_value for v in workflow.variables.filter(is_secret=True) if not v.secret_manager
    ]
    return [v for v in values if v]


def mask_text(execution_id: int, text: str) -> str:
    """`text` with execution `execution_id`'s secrets replaced by *** (in every form the log
    masks)."""
    if not text:
        return text
    mask = _running.get(execution_id)
    if mask is None:
        execution = Execution.objects.select_related("workflow__service", "workflow__registry")
        mask = Masker(stored_secrets(execution.get(pk=execution_id).workflow))
    return mask(text)
