"""The hook URL providers post to: `/hooks/<provider>/<hook id>/`.

Thin on purpose: read at most 5 MB of the body, hand it to `check_delivery`, answer. Providers
give up after 10 s and GitLab disables a hook after four failures, so nothing slow happens here.
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from triggers.webhooks import MAX_BODY_BYTES, check_delivery


@csrf_exempt
@require_POST
def receive(request: HttpRequest, provider: str, hook_id: str) -> JsonResponse:
    body, size = read_body(request)
    reply = check_delivery(provider, hook_id, request.headers, body, size)
    return JsonResponse(reply.body, status=reply.status)


def read_body(request: HttpRequest) -> tuple[bytes | None, int]:
    """The raw body, or None with its size when it is over the limit. Read from the stream:
    `request.body` has its own 2.5 MB limit (DATA_UPLOAD_MAX_MEMORY_SIZE) and would refuse
    bodies the 5 MB cap allows."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > MAX_BODY_BYTES:
        return None, declared
    data = request.read(MAX_BODY_BYTES + 1)
    if len(data) > MAX_BODY_BYTES:
        return None, len(data)
    return data, len(data)
