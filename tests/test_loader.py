"""The Mid_ loader: discovery, validation with file:line errors, hot reload."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from omserver.config import BASE_DIR, Config
from omserver.modules.loading import load_module_file
from omserver.modules.registry import ModuleRegistry, NoSuchModule
from omserver.sdk import ModuleError

FIXTURES = Path(__file__).parent / "fixtures_modules"
GOOD = """NAME = "{name}"
CAPTION = "a test module"
PARAMS = [{{"name": "n", "type": "int", "default": 1}}]


def run(ctx, params):
    ctx.cmd(["true"])
"""


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


@pytest.fixture
def modules(tmp_path: Path) -> Path:
    return tmp_path / "modules"


@pytest.mark.parametrize("backend", ["saltstack", "ansible"])
def test_the_shipped_modules_load_on_both_backends(backend: str) -> None:
    registry = ModuleRegistry(BASE_DIR / "modules", backend)
    assert registry.errors() == {}
    loaded = {m.id: m for m in registry.all()}
    assert sorted(loaded) == [*range(1001, 1008), 1008]  # the classic seven, the audit agent
    assert {i for i, m in loaded.items() if m.exclusive} == {1005, 1007, 1008}
    for module in loaded.values():
        description = json.loads(json.dumps(module.describe()))
        assert description["id"] == module.id and description["name"]
        assert set(module.backends) == {"saltstack", "ansible"}
        assert not module.legacy


def test_only_files_named_mid_digits_are_loaded(modules: Path) -> None:
    common = modules / "common"
    for name in (
        "Mid_abc.py",
        "mid_5000.py",
        "Mid_5000.py.bak",
        "Mid_05000.py",
        "_Mid_5000.py",
        "Mid_5000.txt",
        "Mid_5000_old.py",
    ):
        write(common, name, "raise SystemExit('must never be imported')\n")
    write(common, "Mid_5001.py", GOOD.format(name="good"))
    registry = ModuleRegistry(modules, "saltstack")
    assert [m.id for m in registry.all()] == [5001]
    assert registry.errors() == {}


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("NAME = 'x'\nCAPTION = 'y'\ndef run(ctx, params)\n    pass\n", 3, "SyntaxError"),
        ("NAME = 'x'\nimport no_such_library_here\n", 2, "ModuleNotFoundError"),
        ("NAME = 'x'\nCAPTION = 'y'\nVALUE = 1 / 0\n", 3, "ZeroDivisionError"),
        ("NAME = 'x'\nCAPTION = 'y'\n", 1, "defines no run(ctx, params)"),
        (
            "NAME = 'x'\nCAPTION = 'y'\n\n\ndef run(ctx):\n    pass\n",
            5,
            "run must take (ctx, params)",
        ),
        ("CAPTION = 'y'\n\ndef run(ctx, params):\n    pass\n", 1, "missing NAME"),
        (
            "NAME = 'x'\nCAPTION = 'y'\nPARAMS = [{'name': 'n', 'type': 'float'}]\n"
            "def run(ctx, params):\n    pass\n",
            3,
            "PARAMS: field 'n': type must be",
        ),
        (
            "NAME = 'x'\nCAPTION = 'y'\nPARAMS = {}\ndef run(ctx, params):\n    pass\n",
            3,
            "PARAMS must be a list",
        ),
        (
            "NAME = 'x'\nCAPTION = 'y'\n\nBACKENDS = ['puppet']\ndef run(ctx, params):\n    pass\n",
            4,
            "BACKENDS must list some of saltstack, ansible",
        ),
        (
            "NAME = 'x'\nCAPTION = 'y'\nSETTINGS = {'when': object()}\n"
            "def run(ctx, params):\n    pass\n",
            3,
            "SETTINGS must be plain JSON data",
        ),
        ("import sys\nNAME = 'x'\nsys.exit(3)\n", 3, "SystemExit"),
    ],
)
def test_a_broken_file_is_reported_with_its_line_and_the_others_still_load(
    modules: Path, text: str, line: int, message: str
) -> None:
    common = modules / "common"
    broken = write(common, "Mid_5002.py", text)
    write(common, "Mid_5001.py", GOOD.format(name="good"))
    registry = ModuleRegistry(modules, "saltstack")
    assert [m.id for m in registry.all()] == [5001]
    error = registry.errors()[str(broken.resolve())]
    assert error.startswith(f"{broken.resolve()}:{line}: ")
    assert message in error
    with pytest.raises(NoSuchModule, match=r"module 5002 cannot be loaded: .*Mid_5002\.py"):
        registry.get(5002)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("import time\ntime.sleep(600)\n", "importing it took over 2 s; not loaded"),
        ("import os\nos._exit(7)\n", "importing it ended its process (exit code 7)"),
        ("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n", "(exit code -9)"),
    ],
)
def test_a_file_that_hangs_or_kills_its_process_at_import_is_reported(
    modules: Path, text: str, message: str
) -> None:
    """Module code never runs in the registry's (the daemon's) own process."""
    common = modules / "common"
    broken = write(common, "Mid_5002.py", text)
    write(common, "Mid_5001.py", GOOD.format(name="good"))
    registry = ModuleRegistry(modules, "saltstack", load_timeout=2)
    assert [m.id for m in registry.all()] == [5001]
    assert message in registry.errors()[str(broken.resolve())]
    assert registry.get(5001).name == "good"  # the registry keeps serving


def test_an_unknown_id_is_a_lookup_error_naming_the_folders(modules: Path) -> None:
    registry = ModuleRegistry(modules, "ansible")
    with pytest.raises(LookupError, match=r"no Mid_4242\.py in .*common or .*ansible"):
        registry.get(4242)


def test_a_backend_specific_file_overrides_the_common_one(modules: Path) -> None:
    write(modules / "common", "Mid_5000.py", GOOD.format(name="common"))
    write(modules / "saltstack", "Mid_5000.py", GOOD.format(name="salt only"))
    assert ModuleRegistry(modules, "saltstack").get(5000).name == "salt only"
    assert ModuleRegistry(modules, "saltstack").get(5000).backends == ("saltstack",)
    assert ModuleRegistry(modules, "ansible").get(5000).name == "common"


def test_a_module_for_the_other_backend_says_why_it_cannot_run(modules: Path) -> None:
    path = write(
        modules / "common", "Mid_5000.py", GOOD.format(name="x") + "\n\nBACKENDS = ['ansible']\n"
    )
    registry = ModuleRegistry(modules, "saltstack")
    assert registry.all() == []
    assert registry.errors()[str(path.resolve())].endswith(":10: runs on ansible, not on saltstack")
    assert ModuleRegistry(modules, "ansible").get(5000).backends == ("ansible",)


def test_a_new_file_and_an_edit_are_picked_up_without_a_restart(modules: Path) -> None:
    registry = ModuleRegistry(modules, "saltstack")
    assert registry.all() == []
    path = write(modules / "common", "Mid_5003.py", GOOD.format(name="one"))
    assert registry.get(5003).name == "one"
    path.write_text(GOOD.format(name="two"))  # same size, within the same clock tick
    assert registry.get(5003).name == "two"
    path.write_text("NAME = 'three'\n")
    assert registry.errors()[str(path.resolve())].endswith(
        ":1: defines no run(ctx, params) function (nor a book-style class Modulehandle)"
    )
    path.write_text(GOOD.format(name="four"))
    assert registry.get(5003).name == "four"
    assert registry.errors() == {}
    path.unlink()
    with pytest.raises(NoSuchModule):
        registry.get(5003)


def test_a_link_that_leads_out_of_the_modules_folder_is_refused(
    modules: Path, tmp_path: Path
) -> None:
    outside = write(tmp_path / "elsewhere", "evil.py", GOOD.format(name="evil"))
    (modules / "common").mkdir(parents=True)
    (modules / "common" / "Mid_5004.py").symlink_to(outside)
    registry = ModuleRegistry(modules, "saltstack")
    assert registry.all() == []
    assert "resolves outside" in next(iter(registry.errors().values()))


def test_a_book_style_module_loads_through_the_adapter(modules: Path) -> None:
    shutil.copytree(FIXTURES / "saltstack", modules / "saltstack")
    module = ModuleRegistry(modules, "saltstack").get(9997)
    assert module.legacy and module.name == "Mid_9997"
    assert module.backends == ("saltstack",)
    assert module.params[0]["name"] == "lines"


def test_the_operators_settings_override_the_modules_defaults(tmp_path: Path) -> None:
    module = load_module_file(BASE_DIR / "modules" / "common" / "Mid_1007.py", 1007)
    config_file = tmp_path / "omserver.toml"
    config_file.write_text('[module.1007]\nservices = { nginx = ["openresty"] }\n')
    settings = module.configured_settings(Config({}, file=config_file))
    assert settings["services"]["nginx"] == ["openresty"]
    assert settings["services"]["apache"] == ["apache2", "httpd"]  # merged, not replaced
    assert module.settings["services"]["nginx"] == ["nginx"]  # the defaults stay intact


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("colour = 'red'", "colour: unknown setting (known: services)"),
        ("services = 'nginx'", "services: expected dict like the default"),
    ],
)
def test_a_wrong_setting_is_refused_by_name(tmp_path: Path, table: str, message: str) -> None:
    module = load_module_file(BASE_DIR / "modules" / "common" / "Mid_1007.py", 1007)
    config_file = tmp_path / "omserver.toml"
    config_file.write_text(f"[module.1007]\n{table}\n")
    with pytest.raises(ModuleError, match=None) as caught:
        module.configured_settings(Config({}, file=config_file))
    assert f"[module.1007] {message}" in str(caught.value)
