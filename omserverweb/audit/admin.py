from django.contrib import admin

from omserverweb.audit.models import CommandEvent


@admin.register(CommandEvent)
class CommandEventAdmin(admin.ModelAdmin):
    """The audit trail is evidence: readable, never editable here."""

    list_display = ["event_time", "host", "user", "source", "cwd", "command", "seq"]
    list_filter = ["event_time"]  # host and user: search (a filter lists every distinct value)
    search_fields = ["command", "host", "user", "source"]
    date_hierarchy = "event_time"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
