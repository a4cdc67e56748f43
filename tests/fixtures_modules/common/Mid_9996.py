"""Test module: runs the ctx steps listed as JSON, so tests drive each backend
through the whole job path (loader, child process, ctx, backend)."""

import json

NAME = "steps"
CAPTION = "Run the ctx steps given in the parameter (tests only)."
PARAMS = [
    {
        "name": "steps",
        "type": "str",
        "required": True,
        "max_length": 1000000,
        "help": 'JSON list of [step, args, keywords], e.g. [["cmd", [["uptime"]], {}]]',
    },
]
STEPS = {"cmd", "shell", "copy", "service"}


def run(ctx, params):
    for name, args, keywords in json.loads(params["steps"]):
        if name not in STEPS:
            raise ValueError(f"not a step: {name}")
        getattr(ctx, name)(*args, **keywords)
