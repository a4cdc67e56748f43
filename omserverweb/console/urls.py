from django.urls import path

from omserverweb.console import views
from omserverweb.inventory import views as inventory_views

app_name = "console"

urlpatterns = [
    path("", views.console, name="index"),
    path("jobs/", views.job_list, name="jobs"),
    path("jobs/<int:pk>/", views.job_detail, name="job"),
    path("modules/", views.module_list, name="modules"),
    path("modules/add/", views.module_edit, name="module-add"),
    path("modules/<int:pk>/edit/", views.module_edit, name="module-edit"),
    path("modules/<int:pk>/skeleton/", views.module_skeleton, name="module-skeleton"),
    path("modules/<int:pk>/enable/", views.module_enable, name="module-enable"),
    path("modules/<int:pk>/disable/", views.module_disable, name="module-disable"),
    path("zones/", views.zone_list, name="zones"),
    path("inventory/import/", inventory_views.import_servers, name="inventory-import"),
]
