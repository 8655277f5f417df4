from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.authtoken.views import obtain_auth_token
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.routers import DefaultRouter

from approvals import views as approval_views
from approvals.api import ApprovalRequestViewSet
from executions.api import ExecutionViewSet
from executions.releases_api import ReleaseViewSet
from executions.reports_api import download_report
from executions.views import service_where
from triggers import urls as trigger_urls
from workflows import setup_views, views
from workflows.api import (
    EnvironmentViewSet,
    ProjectViewSet,
    RegistryConnectionViewSet,
    ServiceViewSet,
    WorkflowViewSet,
)


class SwaggerView(SpectacularSwaggerView):
    """Swagger UI. OPTIONS answers JSON like every API endpoint: the page's template renderer
    has nothing to render for it."""

    def get_renderers(self) -> list[BaseRenderer]:
        if self.request.method == "OPTIONS":
            return [JSONRenderer()]
        return super().get_renderers()


router = DefaultRouter()
router.register("projects", ProjectViewSet, basename="project")
router.register("services", ServiceViewSet, basename="service")
router.register("environments", EnvironmentViewSet, basename="environment")
router.register("registries", RegistryConnectionViewSet, basename="registry")
router.register("workflows", WorkflowViewSet, basename="workflow")
router.register("executions", ExecutionViewSet, basename="execution")
router.register("approvals", ApprovalRequestViewSet, basename="approval")
router.register("releases", ReleaseViewSet, basename="release")

urlpatterns = [
    path("", views.home, name="home"),
    path("workflows/<int:pk>/", views.workflow_page, name="workflow-page"),
    path("workflows/<int:pk>/builder/", views.workflow_builder_page, name="workflow-builder"),
    path("services/<int:pk>/workflows/new/", views.new_workflow_page, name="workflow-new"),
    path("workflows/<int:pk>/run/", views.run_dialog, name="ui-workflow-run"),
    path("workflows/<int:pk>/run/refs/", views.run_refs, name="ui-workflow-run-refs"),
    path("projects/new/", setup_views.project_new, name="ui-project-new"),
    path("projects/<int:pk>/", setup_views.project_settings, name="ui-project-settings"),
    path("projects/<int:pk>/edit/", setup_views.project_edit, name="ui-project-edit"),
    path("projects/<int:pk>/delete/", setup_views.project_delete, name="ui-project-delete"),
    path("projects/<int:pk>/members/", setup_views.project_members, name="ui-project-members"),
    path("projects/<int:pk>/services/new/", setup_views.service_new, name="ui-service-new"),
    path("projects/<int:pk>/services/test/", setup_views.service_test, name="ui-service-test"),
    path(
        "projects/<int:pk>/services/<int:service_pk>/edit/",
        setup_views.service_edit,
        name="ui-service-edit",
    ),
    path(
        "projects/<int:pk>/services/<int:service_pk>/delete/",
        setup_views.service_delete,
        name="ui-service-delete",
    ),
    path("projects/<int:pk>/environments/", setup_views.environment_add, name="ui-environment-add"),
    path(
        "projects/<int:pk>/environments/test/",
        setup_views.environment_test,
        name="ui-environment-test",
    ),
    path(
        "projects/<int:pk>/environments/<int:env_pk>/",
        setup_views.environment_change,
        name="ui-environment-change",
    ),
    path(
        "projects/<int:pk>/environments/<int:env_pk>/edit/",
        setup_views.environment_edit,
        name="ui-environment-edit",
    ),
    path(
        "projects/<int:pk>/environments/<int:env_pk>/delete/",
        setup_views.environment_delete,
        name="ui-environment-delete",
    ),
    path("projects/<int:pk>/registries/", setup_views.registry_add, name="ui-registry-add"),
    path("projects/<int:pk>/registries/test/", setup_views.registry_test, name="ui-registry-test"),
    path(
        "projects/<int:pk>/registries/<int:registry_pk>/edit/",
        setup_views.registry_edit,
        name="ui-registry-edit",
    ),
    path(
        "projects/<int:pk>/registries/<int:registry_pk>/delete/",
        setup_views.registry_delete,
        name="ui-registry-delete",
    ),
    path(
        "workflows/<int:pk>/variables/",
        setup_views.workflow_variables,
        name="ui-workflow-variables",
    ),
    path(
        "workflows/<int:pk>/variables/import/",
        setup_views.variables_import,
        name="ui-workflow-variables-import",
    ),
    path(
        "workflows/<int:pk>/variables/export/",
        setup_views.variables_export,
        name="ui-workflow-variables-export",
    ),
    path(
        "workflows/<int:pk>/variables/test/",
        setup_views.variables_test_ref,
        name="ui-workflow-variables-test",
    ),
    path("probes/<str:probe_id>/", setup_views.probe, name="probe"),
    path("executions/<int:pk>/", views.execution_page, name="execution-page"),
    path("approvals/", approval_views.waiting, name="approvals-waiting"),
    path("analytics/", views.analytics_page, name="analytics"),
    path("services/<int:pk>/where/", service_where, name="service-where"),
    path("accounts/", include("accounts.urls")),
    path("admin/", admin.site.urls),
    path("hooks/", include(trigger_urls.hook_urls)),
    path("api/", include(trigger_urls.api_urls)),
    path(
        "api/executions/<int:execution_id>/reports/<int:report_id>/download/",
        download_report,
        name="execution-report-download",
    ),
    path("api/", include(router.urls)),
    path("api/auth/", include("rest_framework.urls")),
    path("api/auth/token/", obtain_auth_token, name="api-token"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SwaggerView.as_view(url_name="schema"), name="swagger-ui"),
]
