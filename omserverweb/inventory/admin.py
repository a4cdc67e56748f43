from django import forms
from django.contrib import admin
from django.db.models import Count, OuterRef, Subquery
from django.utils.translation import gettext_lazy as _

from omserver.protocol.wire import decode_key, valid_client_id
from omserverweb.inventory.models import AppCategory, FunctionCategory, Server, Zone


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


class ZoneForm(forms.ModelForm):
    """The client key is written, never shown: left empty on a change, the stored one stays."""

    client_key = forms.CharField(
        label=_("client key"),
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False),
        help_text=_("Printed by `omserver keys add web --web` on the zone's daemon host."),
    )

    class Meta:
        model = Zone
        fields = ["name", "address", "client_id", "client_key", "backend", "notes"]

    def clean_client_key(self) -> str:
        key = self.cleaned_data["client_key"]
        if not key and not self.instance.sealed_key:
            raise forms.ValidationError(_("A new zone needs its daemon's client key."))
        if key:
            try:
                decode_key(key)
            except ValueError as exc:
                raise forms.ValidationError(str(exc)) from exc
        return key

    def clean_client_id(self) -> str:
        client_id = self.cleaned_data["client_id"]
        if not valid_client_id(client_id):
            raise forms.ValidationError(_("Use the name given to `omserver keys add`."))
        return client_id

    def save(self, commit: bool = True) -> Zone:
        if self.cleaned_data["client_key"]:
            self.instance.client_key = self.cleaned_data["client_key"]
        return super().save(commit)


@admin.register(Zone)
class ZoneAdmin(admin.ModelAdmin):
    form = ZoneForm
    list_display = ["name", "address", "client_id", "backend", "server_count"]
    list_filter = ["backend"]
    search_fields = ["name", "address", "notes"]

    def get_readonly_fields(self, request, obj=None):
        # Servers name their zone: a rename would move them to the default daemon.
        return ["name"] if obj else []

    def get_queryset(self, request):
        # Servers name their zone (no foreign key): one counting subquery, not a query a row.
        count = Server.objects.filter(zone=OuterRef("name")).values("zone").annotate(n=Count("pk"))
        return super().get_queryset(request).annotate(servers=Subquery(count.values("n")))

    @admin.display(description=_("servers"), ordering="servers")
    def server_count(self, obj: Zone) -> int:
        return obj.servers or 0

    def has_delete_permission(self, request, obj: Zone | None = None) -> bool:
        # A zone with servers stays until they move: else they would fall to the default daemon.
        in_use = obj is not None and Server.objects.filter(zone=obj.name).exists()
        return super().has_delete_permission(request, obj) and not in_use

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # one at a time, each checked above
        return actions
