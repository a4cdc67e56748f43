"""Test module: three steps, each printing its own line and taking its own time."""

NAME = "three steps"
CAPTION = "Three steps with their own output and durations."
PARAMS = []


def run(ctx, params):
    ctx.cmd(["echo", "first step"])
    ctx.shell('sleep "$1"; echo "second step"', args=[2])
    ctx.cmd(["sh", "-c", "echo third step; sleep 1"])
