from django.contrib import admin
from django.db.models import Count

from omserverweb.inventory.models import AppCategory, FunctionCategory, Server


class AppCategoryInline(admin.TabularInline):
    model = AppCategory
    extra = 0
    show_change_link = True


@admin.register(FunctionCategory)
class FunctionCategoryAdmin(admin.ModelAdmin):
    list_display = ["name", "app_category_count"]
    search_fields = ["name"]
    inlines = [AppCategoryInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(n_apps=Count("app_categories"))

    @admin.display(description="application categories", ordering="n_apps")
    def app_category_count(self, obj: FunctionCategory) -> int:
        return obj.n_apps


@admin.register(AppCategory)
class AppCategoryAdmin(admin.ModelAdmin):
    list_display = ["name", "function", "server_count"]
    list_filter = ["function"]
    search_fields = ["name", "function__name"]
    list_select_related = ["function"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(n_servers=Count("servers"))

    @admin.display(description="servers", ordering="n_servers")
    def server_count(self, obj: AppCategory) -> int:
        return obj.n_servers


@admin.register(Server)
class ServerAdmin(admin.ModelAdmin):
    list_display = ["hostname", "lan_ip", "wan_ip", "os", "app_category", "zone", "enabled"]
    list_filter = ["enabled", "zone", "os", "app_category__function", "app_category"]
    search_fields = ["hostname", "lan_ip", "wan_ip", "notes"]
    list_select_related = ["app_category__function"]
    list_editable = ["enabled"]
    fieldsets = [
        (None, {"fields": ["hostname", "app_category", "enabled", "zone"]}),
        ("Addresses", {"fields": ["lan_ip", "wan_ip", "os"]}),
        ("Ansible / SSH", {"fields": ["ssh_port", "ssh_user"]}),
        ("Notes", {"fields": ["notes"]}),
    ]
