"""Injection is impossible: a parameter is refused by its schema or arrives literally.

Each payload tries to create a canary file through a shell, command
substitution, backticks, a newline, Ansible's templating or Salt's
``key=value`` argument parsing; the test proves the canary never appears.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from omserver.modules.registry import ModuleRegistry
from omserver.sdk import ParamError, validate_params
from tests.lab.fixtures import BackendLab
from tests.lab.runs import CLASSIC_MODULES, FIXTURE_MODULES, run_module

PAYLOADS = [
    "5; touch {canary}",
    "$(touch {canary})",
    "`touch {canary}`",
    "5\ntouch {canary}",
    "5 && touch {canary}",
    "5 | touch {canary}",
    "{{{{ lookup('pipe', 'touch {canary}') }}}}",
    "{{% raw %}}$(touch {canary}){{% endraw %}}",
    "python_shell=True cmd='touch {canary}'",
    "' ; touch {canary} ; '",
    '" ; touch {canary} ; "',
]


@pytest.fixture
def canary(tmp_path: Path) -> Path:
    return tmp_path / "canary"


@pytest.mark.parametrize("template", PAYLOADS)
def test_str_parameters_reach_the_host_literally(
    backend_lab: BackendLab, canary: Path, template: str
) -> None:
    payload = template.format(canary=canary)
    run = run_module(
        backend_lab.config(),
        9999,
        backend_lab.targets,
        {"text": payload, "count": 3},
        modules_dir=FIXTURE_MODULES,
    )
    for host in (t.hostname for t in backend_lab.targets):
        by_argv, by_shell = run.of(host)
        assert (by_argv.status, by_argv.stdout) == ("ok", payload.rstrip("\n"))
        assert (by_shell.status, by_shell.stdout) == ("ok", f"{payload}|3|{payload}")
    assert not canary.exists()


@pytest.mark.parametrize("template", PAYLOADS[:6])
def test_int_parameters_refuse_anything_but_a_number(canary: Path, template: str) -> None:
    module = ModuleRegistry(CLASSIC_MODULES, "saltstack").get(1001)
    with pytest.raises(ParamError) as caught:
        validate_params(module.params, {"lines": template.format(canary=canary)})
    assert caught.value.field == "lines"


@pytest.mark.parametrize(
    ("module_id", "field"), [(1005, "file"), (1006, "service"), (1007, "service")]
)
def test_choice_parameters_refuse_anything_off_the_list(
    canary: Path, module_id: int, field: str
) -> None:
    module = ModuleRegistry(CLASSIC_MODULES, "ansible").get(module_id)
    for template in PAYLOADS:
        with pytest.raises(ParamError, match="must be one of"):
            validate_params(module.params, {field: f"nginx{template.format(canary=canary)}"})
