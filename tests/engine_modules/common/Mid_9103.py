"""Test module: fails on the host named by ``fail_on``, succeeds elsewhere."""

NAME = "fail on one host"
CAPTION = "Exit 1 on one host, 0 on the others."
PARAMS = [{"name": "fail_on", "type": "str", "required": True}]


def run(ctx, params):
    bad = [t.hostname for t in ctx.targets if t.hostname == params["fail_on"]]
    good = [t.hostname for t in ctx.targets if t.hostname != params["fail_on"]]
    if bad:
        ctx.cmd(["false"], hosts=bad)
    if good:
        ctx.cmd(["true"], hosts=good)
