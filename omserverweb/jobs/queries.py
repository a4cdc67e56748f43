"""Which jobs a user may see: their own, or every job with jobs.view_job."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from omserverweb.jobs.models import Job


def visible_jobs(user: AbstractBaseUser) -> QuerySet[Job]:
    jobs = Job.objects.select_related("module")
    if user.has_perm("jobs.view_job"):
        return jobs
    return jobs.filter(requested_by=user.get_username())
