from django.contrib import admin, messages
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from omserverweb import request_limits
from omserverweb.modules import services as review
from omserverweb.modules.models import ModuleDefinition


@admin.register(ModuleDefinition)
class ModuleDefinitionAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "caption", "backends", "enabled", "schema_changed", "file_hash"]
    list_display_links = ["id", "name"]
    list_filter = ["enabled", "schema_changed"]
    search_fields = ["=id", "name", "caption"]
    formfield_overrides = {models.JSONField: {"form_class": request_limits.JSONField}}
    # What runs is decided by the enable actions below, from what the daemons reported.
    readonly_fields = [
        "enabled",
        "file_hash",
        "file_schema",
        "load_error",
        "reported_at",
        "schema_changed",
        "enabled_hash",
        "enabled_by",
        "enabled_at",
        "created_at",
        "updated_at",
    ]
    actions = ["enable", "disable"]

    def get_readonly_fields(self, request: HttpRequest, obj: ModuleDefinition | None = None):
        if obj is not None:  # the file declares it; enabling takes the file's
            return [*self.readonly_fields, "params_schema"]
        return self.readonly_fields

    def has_enable_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(review.ENABLE_PERMISSION)

    @admin.action(description=_("Enable the selected modules' files"), permissions=["enable"])
    def enable(self, request: HttpRequest, queryset: QuerySet[ModuleDefinition]) -> None:
        for module in queryset:
            try:
                review.enable_module(request.user, module.pk, module.file_hash)
            except review.ModuleReviewError as exc:
                self.message_user(request, str(exc), messages.ERROR)

    @admin.action(description=_("Disable the selected modules"), permissions=["enable"])
    def disable(self, request: HttpRequest, queryset: QuerySet[ModuleDefinition]) -> None:
        for module in queryset:
            review.disable_module(request.user, module.pk)
