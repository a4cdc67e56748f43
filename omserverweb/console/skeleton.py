"""A starting ``Mid_<id>.py`` for module authors, filled from the definition if any."""

from __future__ import annotations

from pprint import pformat

from django.db.models import Max

from omserver.vocabulary import BACKENDS
from omserverweb.modules.models import ModuleDefinition

FIRST_ID = 1001

TEMPLATE = '''"""OMServer task module {module_id}: drop this file into modules/common/."""

NAME = {name!r}
CAPTION = {caption!r}
BACKENDS = {backends!r}
# Each field: name, type (int, str, bool, choice, path), and optionally default, choices,
# min, max, pattern, required, help, sensitive. Values arrive validated and typed.
PARAMS = {params}


def run(ctx, params):
    """Runs once per job; every ctx call returns one result per host.

    Pass values as argv elements, never inside a shell string:
        ctx.cmd(["tail", "-n", str(params["lines"]), "/var/log/syslog"])
    """
    return ctx.cmd(["uname", "-a"])
'''


def next_free_id() -> int:
    highest = ModuleDefinition.objects.aggregate(top=Max("id"))["top"]
    return max(FIRST_ID, (highest or 0) + 1)


def render(module_id: int, module: ModuleDefinition | None) -> str:
    schema = module.params_schema if module else []
    return TEMPLATE.format(
        module_id=int(module_id),
        name=module.name if module else f"Module {module_id}",
        caption=module.caption if module else "What this module does, for the console.",
        backends=list(module.backends if module else BACKENDS),
        params=pformat(schema, indent=4, sort_dicts=False),
    )
