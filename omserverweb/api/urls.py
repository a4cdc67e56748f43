from csp.constants import SELF
from csp.decorators import csp_replace
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from omserverweb.api import views

router = DefaultRouter()
router.include_format_suffixes = False  # content negotiation by Accept header only
router.register("function-categories", views.FunctionCategoryViewSet, basename="functioncategory")
router.register("app-categories", views.AppCategoryViewSet, basename="appcategory")
router.register("servers", views.ServerViewSet, basename="server")
router.register("modules", views.ModuleViewSet, basename="module")
router.register("jobs", views.JobViewSet, basename="job")

# Swagger UI with its start script in a file of its own (the split view), not inline;
# its stylesheet draws icons from data: URLs, which only this page may load.
docs = csp_replace({"img-src": [SELF, "data:"]})(
    SpectacularSwaggerSplitView.as_view(url_name="api:schema", template_name="api/swagger_ui.html")
)

urlpatterns = [
    path("", include(router.urls)),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", docs, name="docs"),
]
