"""The record of truth: every job from any client, each host's steps and what they printed.

Statuses are :mod:`omserver.vocabulary`'s; the choices here only add their labels.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from omserver.vocabulary import HostStatus, JobStatus
from omserverweb.choices import choices
from omserverweb.modules.models import ModuleDefinition

JOB_STATUS_CHOICES = choices(JobStatus)
HOST_STATUS_CHOICES = choices(HostStatus)


class Job(models.Model):
    module = models.ForeignKey(
        ModuleDefinition, on_delete=models.PROTECT, related_name="jobs", verbose_name=_("module")
    )
    requested_by = models.CharField(_("requested by"), max_length=150, db_index=True)
    client = models.CharField(_("client"), max_length=100)
    targets = models.JSONField(_("targets"), default=list)
    params = models.JSONField(_("parameters (sensitive masked)"), default=dict)
    rollout = models.JSONField(_("rollout"), null=True, blank=True)
    rollout_stop = models.TextField(_("rollout stopped"), blank=True)
    backend = models.CharField(_("backend"), max_length=20, blank=True)
    daemon = models.CharField(_("daemon"), max_length=100, blank=True, db_index=True)
    timeout = models.FloatField(_("timeout (s)"), null=True, blank=True)
    status = models.CharField(
        _("status"), max_length=12, choices=JOB_STATUS_CHOICES, default=JobStatus.QUEUED
    )
    error = models.TextField(_("error"), blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    # Set when the job finishes: its link in the tamper-evident chain of job records.
    chain_pos = models.PositiveBigIntegerField(_("chain position"), null=True, blank=True)
    prev_hash = models.CharField(_("previous hash"), max_length=64, blank=True)
    chain_hash = models.CharField(_("hash"), max_length=64, blank=True)
    chain_key = models.CharField(_("chain key"), max_length=16, blank=True)  # empty: unkeyed
    # The last sequence number given to a row of this job's hosts, steps or live output;
    # bumped under this row's lock (see recorder._take_seqs).
    last_seq = models.PositiveIntegerField(_("last result sequence"), default=0)
    # 1: recorded before steps (each host's one result is its step 1); 2: steps. The job
    # chain hashes each as it was recorded (audit.jobchain).
    record_format = models.PositiveSmallIntegerField(_("record format"), default=2)
    # The submitting client's id for the request: a retried submit finds its job here.
    # NULL, not "", when there is none: NULLs never clash in the unique constraint below.
    request = models.CharField(_("request id"), max_length=64, null=True, blank=True)  # noqa: DJ001
    # While queued on a daemon: what it will run, sealed with its queue key (the
    # parameters unmasked), so that the job survives a daemon restart. Emptied once it runs.
    order = models.TextField(_("queued order (sealed)"), blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["-created_at"], name="job_created_idx"),
            models.Index(fields=["status", "-created_at"], name="job_status_idx"),
            models.Index(fields=["module", "-created_at"], name="job_module_idx"),
            models.Index(fields=["requested_by", "-created_at"], name="job_user_idx"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["chain_pos"], name="uniq_job_chain_pos"),
            models.UniqueConstraint(fields=["client", "request"], name="uniq_job_request"),
        ]
        verbose_name = _("job")
        verbose_name_plural = _("jobs")

    def __str__(self) -> str:
        return f"#{self.pk} {self.module_id} {self.status}"

    @property
    def duration(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class JobPart(models.Model):
    """The hosts of one web job in one zone, run by that zone's daemon.

    The web creates a job's parts before it sends them; a daemon claims its
    part (setting ``daemon``) and writes into the shared job, so a job across
    several zones is still one job with every host's result.
    """

    job = models.ForeignKey(
        Job, on_delete=models.CASCADE, related_name="parts", verbose_name=_("job")
    )
    zone = models.CharField(_("zone"), max_length=64)
    hosts = models.JSONField(_("hosts"), default=list)
    daemon = models.CharField(_("daemon"), max_length=100, blank=True)
    status = models.CharField(
        _("status"), max_length=12, choices=JOB_STATUS_CHOICES, default=JobStatus.QUEUED
    )
    error = models.TextField(_("error"), blank=True)
    rollout_stop = models.TextField(_("rollout stopped"), blank=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    order = models.TextField(_("queued order (sealed)"), blank=True)  # as Job.order

    class Meta:
        ordering = ["job", "zone"]
        constraints = [
            models.UniqueConstraint(fields=["job", "zone"], name="uniq_part_job_zone"),
        ]
        indexes = [models.Index(fields=["daemon", "status"], name="part_daemon_idx")]
        verbose_name = _("job part")
        verbose_name_plural = _("job parts")

    def __str__(self) -> str:
        return f"#{self.job_id} {self.zone} {self.status}"


class JobHost(models.Model):
    """One host of a job: where it stands, derived from its steps once the module is done
    with it (``error`` says why when no step does: not run, the module raised…)."""

    job = models.ForeignKey(
        Job, on_delete=models.CASCADE, related_name="results", verbose_name=_("job")
    )
    host = models.CharField(_("host"), max_length=253)
    status = models.CharField(_("status"), max_length=12, choices=HOST_STATUS_CHOICES)
    rc = models.IntegerField(_("return code"), null=True, blank=True)
    error = models.TextField(_("error"), blank=True)
    duration = models.FloatField(_("duration (s)"), default=0.0)
    truncated = models.BooleanField(_("truncated"), default=False)
    # Per job, rises with every write, so that a reader can ask "what changed after N".
    seq = models.PositiveIntegerField(_("sequence"), default=0)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        ordering = ["job", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["job", "host"], name="uniq_result_job_host"),
        ]
        indexes = [
            models.Index(fields=["host", "job"], name="result_host_idx"),
            models.Index(fields=["job", "seq"], name="result_job_seq_idx"),
        ]
        verbose_name = _("host result")
        verbose_name_plural = _("host results")

    def __str__(self) -> str:
        return f"{self.host}: {self.status}"


class JobStep(models.Model):
    """One step of the module on one host: what ran, how it ended, what it printed."""

    job = models.ForeignKey(
        Job, on_delete=models.CASCADE, related_name="steps", verbose_name=_("job")
    )
    host = models.CharField(_("host"), max_length=253)
    number = models.PositiveIntegerField(_("step"))
    action = models.TextField(_("action"), blank=True)
    status = models.CharField(_("status"), max_length=12, choices=HOST_STATUS_CHOICES)
    rc = models.IntegerField(_("return code"), null=True, blank=True)
    stdout = models.TextField(_("stdout"), blank=True)
    stderr = models.TextField(_("stderr"), blank=True)
    truncated = models.BooleanField(_("truncated"), default=False)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    duration = models.FloatField(_("duration (s)"), default=0.0)
    seq = models.PositiveIntegerField(_("sequence"), default=0)

    class Meta:
        ordering = ["job", "host", "number"]
        constraints = [
            models.UniqueConstraint(fields=["job", "host", "number"], name="uniq_step_job_host"),
        ]
        indexes = [models.Index(fields=["job", "seq"], name="step_job_seq_idx")]
        verbose_name = _("step")
        verbose_name_plural = _("steps")

    def __str__(self) -> str:
        return f"{self.host} step {self.number}: {self.status}"


class JobOutput(models.Model):
    """A piece of what a running step printed, kept until the step's own record replaces
    it (or, when the job's end cuts the step short, becomes it)."""

    job = models.ForeignKey(
        Job, on_delete=models.CASCADE, related_name="output", verbose_name=_("job")
    )
    host = models.CharField(_("host"), max_length=253)
    step = models.PositiveIntegerField(_("step"))
    stream = models.CharField(_("stream"), max_length=6)  # stdout or stderr
    text = models.TextField(_("text"))
    seq = models.PositiveIntegerField(_("sequence"))

    class Meta:
        ordering = ["job", "seq"]
        indexes = [
            models.Index(fields=["job", "seq"], name="output_job_seq_idx"),
            models.Index(fields=["job", "host", "step"], name="output_job_step_idx"),
        ]
        verbose_name = _("live output")
        verbose_name_plural = _("live output")

    def __str__(self) -> str:
        return f"{self.host} step {self.step} {self.stream}"


class ReplayedWrite(models.Model):
    """A daemon's write replayed from its spool (``omserver.jobs.durable``): noted in the
    same transaction, so that a second replay of it (after a crash) writes nothing."""

    key = models.CharField(_("key"), max_length=64, primary_key=True)
    at = models.DateTimeField(_("replayed"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("replayed write")
        verbose_name_plural = _("replayed writes")

    def __str__(self) -> str:
        return self.key


class ZoneQueue(models.Model):
    """The queue of the daemons that share a name (one zone's): its row is locked while
    one of them claims a job, so that claims go one at a time and an exclusive module
    never runs twice on a host, whichever daemon runs it."""

    name = models.CharField(_("daemon name"), max_length=100, primary_key=True)

    class Meta:
        verbose_name = _("zone queue")
        verbose_name_plural = _("zone queues")

    def __str__(self) -> str:
        return self.name


class JobClaim(models.Model):
    """A running job (or a zone's part of one) and the daemon instance that runs it.

    Made when a daemon takes the job from its queue, deleted when the job ends:
    what a claim holds (``locks``) no other daemon of the zone may take, and a
    cancel asked of any of them reaches the one that runs it (``cancel``).
    """

    key = models.CharField(_("key"), max_length=40, primary_key=True)  # "job" or "job/part"
    job = models.ForeignKey(
        Job, on_delete=models.CASCADE, related_name="claims", verbose_name=_("job")
    )
    part = models.ForeignKey(
        JobPart,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="claims",
        verbose_name=_("job part"),
    )
    daemon = models.CharField(_("daemon name"), max_length=100, db_index=True)
    instance = models.CharField(_("daemon instance"), max_length=64, db_index=True)
    locks = models.JSONField(_("exclusive locks"), default=list)  # [[module, host], …]
    cancel = models.BooleanField(_("cancel asked"), default=False)
    claimed_at = models.DateTimeField(_("claimed"), auto_now_add=True)

    class Meta:
        verbose_name = _("job claim")
        verbose_name_plural = _("job claims")

    def __str__(self) -> str:
        return f"{self.key} on {self.instance}"
