from django.contrib import admin
from django.urls import include, path
from django.views.i18n import JavaScriptCatalog

from omserverweb.audit.views import ingest_events
from omserverweb.health import healthz

urlpatterns = [
    path("", include("omserverweb.console.urls")),
    path("accounts/tokens/", include("omserverweb.apitokens.urls")),
    path("accounts/", include("django.contrib.auth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("jsi18n/", JavaScriptCatalog.as_view(), name="javascript-catalog"),
    path("audit/", include("omserverweb.audit.urls")),
    path("api/audit/events/", ingest_events, name="audit-ingest"),
    path("api/", include(("omserverweb.api.urls", "api"))),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
]

# What fails outside a view because the database is down is a 503 too, never a stack.
handler500 = "omserverweb.outages.server_error"
