"""Test module: like 9101, but declared exclusive per host."""

NAME = "exclusive sleep"
CAPTION = "Sleep, never twice at once on one host."
PARAMS = [{"name": "seconds", "type": "int", "default": 0, "min": 0, "max": 60}]
EXCLUSIVE = True


def run(ctx, params):
    ctx.cmd(["sleep", str(params["seconds"])])
