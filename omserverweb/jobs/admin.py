from django.contrib import admin

from omserverweb.jobs.models import Job, JobHost, JobPart, JobStep
from omserverweb.readonly_admin import ReadOnlyAdmin


class JobHostInline(admin.TabularInline):
    model = JobHost
    extra = 0
    can_delete = False
    fields = ["host", "status", "rc", "duration", "truncated", "error"]
    readonly_fields = fields
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class JobStepInline(admin.StackedInline):
    model = JobStep
    extra = 0
    can_delete = False
    fields = [
        "host",
        "number",
        "action",
        "status",
        "rc",
        "duration",
        "truncated",
        "stdout",
        "stderr",
    ]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class JobPartInline(admin.TabularInline):
    model = JobPart
    extra = 0
    can_delete = False
    fields = ["zone", "daemon", "status", "error", "started_at", "finished_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Job)
class JobAdmin(ReadOnlyAdmin):
    """Jobs are written by the daemon; the admin only reads them."""

    list_display = [
        "id",
        "module",
        "status",
        "requested_by",
        "client",
        "host_count",
        "created_at",
        "finished_at",
    ]
    list_filter = ["status", "client", "backend", "module", "created_at"]
    search_fields = ["=id", "requested_by", "results__host", "error"]
    date_hierarchy = "created_at"
    list_select_related = ["module"]
    inlines = [JobPartInline, JobHostInline, JobStepInline]

    @admin.display(description="hosts")
    def host_count(self, obj: Job) -> int:
        return len(obj.targets)


@admin.register(JobHost)
class JobHostAdmin(ReadOnlyAdmin):
    list_display = ["job", "host", "status", "rc", "duration", "truncated", "updated_at"]
    list_filter = ["status", "truncated"]
    search_fields = ["host", "=job__id"]
    list_select_related = ["job__module"]
    raw_id_fields = ["job"]
