from django.contrib import admin

from omserverweb.audit.models import CommandEvent
from omserverweb.readonly_admin import ReadOnlyAdmin


@admin.register(CommandEvent)
class CommandEventAdmin(ReadOnlyAdmin):
    """The audit trail is evidence: readable, never editable here."""

    list_display = ["event_time", "host", "user", "source", "cwd", "command", "seq"]
    list_filter = ["event_time"]  # host and user: search (a filter lists every distinct value)
    search_fields = ["command", "host", "user", "source"]
    date_hierarchy = "event_time"
