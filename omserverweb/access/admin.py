from django.contrib import admin

from omserverweb.access.models import Grant


@admin.register(Grant)
class GrantAdmin(admin.ModelAdmin):
    list_display = ["group", "module", "app_category"]
    list_filter = ["group", "module", "app_category__function"]
    search_fields = ["group__name", "module__name", "app_category__name"]
    list_select_related = ["group", "module", "app_category__function"]
    autocomplete_fields = ["module", "app_category"]
