"""REST API for projects, services, environments, registries and workflow documents."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import transaction
from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiTypes,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ParseError
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from atmosly.api_errors import error_response
from atmosly.api_input import BoundedLookupMixin, YAMLRenderer, parse_id, query_id
from atmosly.documents import StrictJSONParser, TextYAMLParser, YAMLParser, resolve_plain
from executions.models import Trigger
from executions.serializers import ExecutionSerializer, RunRequestSerializer
from triggers.runs import check_run_request
from workflows.document import workflow_document
from workflows.models import Environment, RegistryConnection, Service, Workflow
from workflows.permissions import (
    CHANGE,
    METHOD_PERMISSIONS,
    VIEW,
    WorkflowPermission,
    visible_projects,
)
from workflows.serializers import (
    EnvironmentSerializer,
    MemberSerializer,
    ProjectSerializer,
    RegistryConnectionSerializer,
    ServiceSerializer,
)
from workflows.services import (
    VersionConflict,
    check_add_member,
    check_remove_member,
    check_save_workflow,
    do_create_project,
    do_create_service,
    do_delete_environment,
    do_delete_project,
    do_delete_registry,
    do_delete_service,
    editable_part,
)


class ProjectViewSet(BoundedLookupMixin, viewsets.ModelViewSet):
    """Projects the user is a member of. Creating and changing projects needs Django's model
    permissions on Project (held by the Admin role)."""

    serializer_class = ProjectSerializer
    permission_classes = [WorkflowPermission]
    method_perms = {
        "GET": VIEW,
        "HEAD": VIEW,
        "OPTIONS": VIEW,
        "POST": "workflows.add_project",
        "PUT": "workflows.change_project",
        "PATCH": "workflows.change_project",
        "DELETE": "workflows.delete_project",
    }

    required_perm = {"members": VIEW, "remove_member": VIEW}  # the service function decides

    def get_queryset(self):
        return visible_projects(self.request.user).prefetch_related("members")

    def perform_create(self, serializer):
        user = self.request.user
        assert isinstance(user, User)  # WorkflowPermission lets only signed-in users in
        serializer.instance = do_create_project(serializer.validated_data, user)

    def perform_destroy(self, instance):
        """409 while a run in the project has not ended (`do_delete_project`)."""
        do_delete_project(self.request.user, instance)

    @extend_schema(request=MemberSerializer, responses=ProjectSerializer)
    @action(detail=True, methods=["post"])
    def members(self, request, pk=None):
        """Adds a member: `{"username": ..., "role": "Developer"}` (role optional: a group
        name). Only an administrator of the project (a member with "Can change project", or a
        superuser) may; 400 names `username` or `role`."""
        project = self.get_object()
        body = MemberSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        check_add_member(request.user, project, **body.validated_data)
        return Response(ProjectSerializer(project).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={204: None})
    @action(detail=True, methods=["delete"], url_path=r"members/(?P<username>[^/]+)")
    def remove_member(self, request, pk=None, username=None):
        """Removes a member (their roles stay, as roles are global groups)."""
        check_remove_member(request.user, self.get_object(), username)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ProjectScopedViewSet(BoundedLookupMixin, viewsets.ModelViewSet):
    permission_classes = [WorkflowPermission]
    # Environments and registries are part of a project's workflow configuration.
    method_perms = {
        "GET": VIEW,
        "HEAD": VIEW,
        "OPTIONS": VIEW,
        "POST": CHANGE,
        "PUT": CHANGE,
        "PATCH": CHANGE,
        "DELETE": CHANGE,
    }

    def get_queryset(self):
        qs = super().get_queryset().filter(project__in=visible_projects(self.request.user))
        project = self.request.query_params.get("project", "")
        if project.isdigit():
            qs = qs.filter(project_id=query_id(self.request, "project"))
        elif project:
            qs = qs.filter(project__name=project)
        return qs.select_related("project")


class ServiceViewSet(ProjectScopedViewSet):
    queryset = Service.objects.all()
    serializer_class = ServiceSerializer
    # Creating a service creates its default workflow, so services use the workflow map.
    method_perms = METHOD_PERMISSIONS

    def perform_create(self, serializer):
        do_create_service(Service(**serializer.validated_data))
        serializer.instance = Service.objects.get(
            project=serializer.validated_data["project"], name=serializer.validated_data["name"]
        )

    def perform_destroy(self, instance):
        """409 while a run of the service has not ended (`do_delete_service`)."""
        do_delete_service(self.request.user, instance)


class EnvironmentViewSet(ProjectScopedViewSet):
    queryset = Environment.objects.all()
    serializer_class = EnvironmentSerializer

    def perform_destroy(self, instance):
        """409 while a workflow deploys to or builds in it (`do_delete_environment`)."""
        do_delete_environment(self.request.user, instance)


class RegistryConnectionViewSet(ProjectScopedViewSet):
    queryset = RegistryConnection.objects.all()
    serializer_class = RegistryConnectionSerializer

    def perform_destroy(self, instance):
        """409 while a workflow or a service uses it (`do_delete_registry`)."""
        do_delete_registry(self.request.user, instance)


@extend_schema(request=OpenApiTypes.OBJECT, responses=OpenApiTypes.OBJECT)
@extend_schema_view(
    list=extend_schema(
        operation_id="workflows_list", parameters=[OpenApiParameter("service", int)]
    ),
    destroy=extend_schema(responses={204: None}),
)
class WorkflowViewSet(
    BoundedLookupMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Whole workflow documents: GET loads one, PUT saves all of it, PATCH some top-level
    sections. Send or ask for `application/yaml` to import or export as YAML."""

    permission_classes = [WorkflowPermission]
    parser_classes = [StrictJSONParser, YAMLParser, TextYAMLParser]
    # Four scripts of up to 64 KiB each, variables and layout: more than the API default.
    max_body_bytes = 1024 * 1024
    renderer_classes = [JSONRenderer, YAMLRenderer]
    required_perm = {"run": CHANGE, "export": VIEW}

    def get_queryset(self):
        qs = Workflow.objects.filter(
            service__project__in=visible_projects(self.request.user)
        ).select_related("service__project", "registry")
        service = self.request.query_params.get("service", "")
        service_id = query_id(self.request, "service") if service.isdigit() else None
        if service_id is not None:
            qs = qs.filter(service_id=service_id)
        return qs

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        assert page is not None  # PAGE_SIZE is set, so every list is paged
        return self.get_paginated_response([workflow_document(w) for w in page])

    def retrieve(self, request, *args, **kwargs):
        return _with_etag(Response(workflow_document(self.get_object())))

    def create(self, request, *args, **kwargs):
        data = request.data if isinstance(request.data, dict) else {}
        service_ref = resolve_plain(data.get("service"))
        if isinstance(service_ref, dict):
            service_ref = service_ref.get("id")
        if isinstance(service_ref, bool) or not isinstance(service_ref, int):
            return _field_error("service", "give the id of the service this workflow belongs to")
        if parse_id(service_ref) is None:
            return _field_error("service", f"no service with id {service_ref}")
        service = Service.objects.filter(
            pk=service_ref, project__in=visible_projects(request.user)
        ).first()
        if service is None:
            return _field_error("service", f"no service with id {service_ref}")
        workflow = check_save_workflow(request.user, service, _document_part(data))
        return Response(workflow_document(workflow), status=status.HTTP_201_CREATED)

    def update(self, request, *args, partial: bool = False, **kwargs):
        """Saves the document. `If-Match: "<version>"` (the ETag of GET) makes the save
        conditional: 412 with `updated_by` when someone saved since; without it the last save wins."""
        workflow = self.get_object()
        expected = _if_match_version(request)
        try:
            with transaction.atomic():
                workflow = check_save_workflow(
                    request.user,
                    workflow.service,
                    _document_part(request.data),
                    workflow,
                    partial,
                    expected_version=expected,
                )
        except VersionConflict as conflict:
            return Response(conflict.body, status=conflict.status_code)
        return _with_etag(Response(workflow_document(workflow)))

    def partial_update(self, request, *args, **kwargs):
        return self.update(request, *args, partial=True, **kwargs)

    @action(detail=True, methods=["get"], renderer_classes=[YAMLRenderer, JSONRenderer])
    def export(self, request, pk=None):
        """The document without ids, ready to import into another service or project."""
        document = _document_part(workflow_document(self.get_object()))
        response = Response(document)
        response["Content-Disposition"] = f'attachment; filename="workflow-{pk}.yaml"'
        return response

    @extend_schema(request=RunRequestSerializer, responses={201: ExecutionSerializer})
    @action(detail=True, methods=["post"])
    def run(self, request, pk=None):
        """Starts a run. Body (`RunRequestSerializer`): at most one of `branch`, `tag` (the
        field says what it is) or `ref` (a branch or tag name; the repository says which),
        optionally an exact `commit`, or for deploy-only workflows an `image_tag`; default: the
        service's default branch. 201 with the run; 400 names the field."""
        workflow = self.get_object()
        trigger = Trigger.API if request.auth is not None else Trigger.MANUAL
        execution = check_run_request(request.user, workflow, request.data, trigger=trigger)
        return Response(ExecutionSerializer(execution).data, status=status.HTTP_201_CREATED)


def _with_etag(response: Response) -> Response:
    response["ETag"] = f'"{response.data["version"]}"'
    return response


def _if_match_version(request) -> int | None:
    """The version an If-Match header names (`"7"` or `W/"7"`); None when absent or `*`."""
    header = request.headers.get("If-Match", "").strip()
    if not header or header == "*":
        return None
    tag = header.split(",")[0].strip().removeprefix("W/").strip('"')
    if not tag.isdigit():
        raise ParseError(f'If-Match must be the ETag of the workflow, e.g. "3" (got {header})')
    return int(tag)


def _document_part(data) -> dict:
    return editable_part(data) if isinstance(data, dict) else data


def _field_error(field: str, message: str) -> Response:
    return error_response([{"field": field, "message": message}])


def get_workflow_for(user, pk: int) -> Workflow:
    """The workflow `pk` of a project `user` is a member of, else 404."""
    if parse_id(pk) is None:
        raise Http404("No such workflow.")
    return get_object_or_404(
        Workflow.objects.filter(service__project__in=visible_projects(user)), pk=pk
    )
