from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from omserverweb.api import views

router = DefaultRouter()
router.include_format_suffixes = False  # content negotiation by Accept header only
router.register("function-categories", views.FunctionCategoryViewSet, basename="functioncategory")
router.register("app-categories", views.AppCategoryViewSet, basename="appcategory")
router.register("servers", views.ServerViewSet, basename="server")
router.register("modules", views.ModuleViewSet, basename="module")
router.register("jobs", views.JobViewSet, basename="job")

urlpatterns = [
    path("", include(router.urls)),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
]
