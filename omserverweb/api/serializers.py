from __future__ import annotations

from typing import Any

from rest_framework import serializers

from omserverweb.access.services import NotPermittedError, usable_module, usable_servers
from omserverweb.inventory.models import AppCategory, FunctionCategory, Server
from omserverweb.jobs.models import (
    JOB_STATUS_CHOICES,
    Job,
    JobHost,
    JobOutput,
    JobPart,
    JobStep,
)
from omserverweb.jobs.queries import HOST_FIELDS, OUTPUT_FIELDS, STEP_FIELDS
from omserverweb.modules.models import ModuleDefinition


class FunctionCategorySerializer(serializers.ModelSerializer):
    class Meta:
        model = FunctionCategory
        fields = ["id", "name"]


class AppCategorySerializer(serializers.ModelSerializer):
    class Meta:
        model = AppCategory
        fields = ["id", "function", "name"]


class ServerSerializer(serializers.ModelSerializer):
    class Meta:
        model = Server
        fields = [
            "id",
            "hostname",
            "lan_ip",
            "wan_ip",
            "os",
            "app_category",
            "ssh_port",
            "ssh_user",
            "zone",
            "enabled",
            "notes",
        ]


class ModuleSerializer(serializers.ModelSerializer):
    review_status = serializers.CharField(read_only=True)

    class Meta:
        model = ModuleDefinition
        # Enabling is an operator's decision on the Modules page (or the admin), and
        # takes the file's schema then: neither is a field a change permission writes.
        read_only_fields = [
            "enabled",
            "review_status",
            "file_hash",
            "file_schema",
            "load_error",
            "enabled_by",
            "enabled_at",
            "created_at",
            "updated_at",
        ]
        fields = ["id", "name", "caption", "backends", "params_schema", *read_only_fields]

    def validate_params_schema(self, value: list) -> list:
        if self.instance is not None and value != self.instance.params_schema:
            raise serializers.ValidationError(
                "the schema is the Mid_ file's: enabling the module takes it"
            )
        return value


class JobHostSerializer(serializers.ModelSerializer):
    class Meta:
        model = JobHost
        fields = list(HOST_FIELDS)


class JobStepSerializer(serializers.ModelSerializer):
    class Meta:
        model = JobStep
        fields = list(STEP_FIELDS)


class JobOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = JobOutput
        fields = list(OUTPUT_FIELDS)


class JobChangesSerializer(serializers.Serializer):
    """The answer of ``jobs/<id>/results/`` (documentation only: the view builds it)."""

    status = serializers.ChoiceField(choices=JOB_STATUS_CHOICES)
    total = serializers.IntegerField(help_text="hosts in the job")
    finished = serializers.IntegerField(help_text="hosts the module is done with")
    results = JobHostSerializer(many=True, help_text="host rows written after the cursor")
    steps = JobStepSerializer(many=True, help_text="step rows written after the cursor")
    output = JobOutputSerializer(many=True, help_text="live output of running steps")
    cursor = serializers.IntegerField(help_text="pass as after= next time")
    more = serializers.BooleanField(help_text="the answer was cut at its size: ask again now")


class ErrorSerializer(serializers.Serializer):
    """DRF's answer to a refused request (documentation only)."""

    detail = serializers.CharField()


class JobSerializer(serializers.ModelSerializer):
    module_name = serializers.CharField(source="module.name", read_only=True)

    class Meta:
        model = Job
        fields = [
            "id",
            "module",
            "module_name",
            "status",
            "requested_by",
            "client",
            "targets",
            "params",
            "rollout",
            "rollout_stop",
            "backend",
            "timeout",
            "error",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class JobPartSerializer(serializers.ModelSerializer):
    class Meta:
        model = JobPart
        fields = ["zone", "hosts", "daemon", "status", "error", "started_at", "finished_at"]
        read_only_fields = fields


class JobDetailSerializer(JobSerializer):
    parts = JobPartSerializer(many=True, read_only=True)
    results = JobHostSerializer(many=True, read_only=True)

    class Meta(JobSerializer.Meta):
        fields = [*JobSerializer.Meta.fields, "parts", "results"]
        read_only_fields = fields


class RolloutSerializer(serializers.Serializer):
    canary = serializers.IntegerField(min_value=1, required=False)
    batch_size = serializers.IntegerField(min_value=1, required=False)
    max_failure_ratio = serializers.FloatField(min_value=0, max_value=1, required=False)


class RunRequestSerializer(serializers.Serializer):
    """What a caller sends to run a module: servers by id or hostname.

    Needs the caller as ``context["user"]``: only what their grants cover is found.
    """

    module = serializers.IntegerField(help_text="the module's id")
    servers = serializers.ListField(
        child=serializers.CharField(max_length=253), min_length=1, max_length=5000
    )
    params = serializers.DictField(required=False, default=dict)
    timeout = serializers.FloatField(min_value=1, max_value=86400, required=False)
    rollout = RolloutSerializer(required=False)

    def validate_module(self, value: int) -> ModuleDefinition:
        try:
            return usable_module(self.context["user"], value)
        except NotPermittedError as exc:
            raise serializers.ValidationError(str(exc)) from exc

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        try:
            servers = usable_servers(self.context["user"], attrs["module"], attrs["servers"])
        except NotPermittedError as exc:
            raise serializers.ValidationError({"servers": [str(exc)]}) from exc
        return {**attrs, "servers": servers}


class RerunSerializer(serializers.Serializer):
    hosts = serializers.ListField(
        child=serializers.CharField(max_length=253), required=False, allow_empty=False
    )
    params = serializers.DictField(required=False, default=dict)
