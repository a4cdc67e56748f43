from django.contrib import admin
from django.db import models

from omserverweb import request_limits
from omserverweb.modules.models import ModuleDefinition


@admin.register(ModuleDefinition)
class ModuleDefinitionAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "caption", "backends", "enabled", "updated_at"]
    list_display_links = ["id", "name"]
    list_filter = ["enabled"]
    search_fields = ["=id", "name", "caption"]
    readonly_fields = ["created_at", "updated_at"]
    formfield_overrides = {models.JSONField: {"form_class": request_limits.JSONField}}
