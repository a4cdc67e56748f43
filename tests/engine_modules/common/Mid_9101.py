"""Test module: sleeps on every host, so a job stays running long enough to act on."""

NAME = "sleep"
CAPTION = "Sleep for a while on each host."
PARAMS = [{"name": "seconds", "type": "int", "default": 1, "min": 0, "max": 600}]


def run(ctx, params):
    ctx.cmd(["sleep", str(params["seconds"])])
