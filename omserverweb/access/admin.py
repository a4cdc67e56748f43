from django.contrib import admin

from omserverweb.access.models import Grant, KeyRefusal
from omserverweb.readonly_admin import ReadOnlyAdmin


@admin.register(Grant)
class GrantAdmin(admin.ModelAdmin):
    list_display = ["group", "module", "app_category"]
    list_filter = ["group", "module", "app_category__function"]
    search_fields = ["group__name", "module__name", "app_category__name"]
    list_select_related = ["group", "module", "app_category__function"]
    autocomplete_fields = ["module", "app_category"]


@admin.register(KeyRefusal)
class KeyRefusalAdmin(ReadOnlyAdmin):
    """What the daemon refused to client keys: readable, never editable here."""

    list_display = ["created_at", "client", "operation", "reason"]
    list_filter = ["operation", "created_at"]
    search_fields = ["client", "reason"]
    date_hierarchy = "created_at"
