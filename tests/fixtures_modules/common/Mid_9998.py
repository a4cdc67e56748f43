"""Test module: misbehaves on request, to test how jobs end."""

import os
import subprocess
import time

from omserver.sdk import ModuleError

NAME = "misbehave"
CAPTION = "Raise, hang, crash, skip hosts or leak a secret, as asked."
PARAMS = [
    {
        "name": "how",
        "type": "choice",
        "required": True,
        "choices": [
            "raise",
            "module-error",
            "hang",
            "exit",
            "nothing",
            "step-then-hang",
            "fail-then-step",
            "secret",
            "log",
            "big",
        ],
    },
    {"name": "token", "type": "str", "sensitive": True},
    {"name": "size", "type": "int", "default": 0, "min": 0},
]


def run(ctx, params):
    how = params["how"]
    if how == "raise":
        raise RuntimeError("boom from the module")
    if how == "module-error":
        raise ModuleError("the module gives up politely")
    if how == "hang":
        helper = subprocess.Popen(["sleep", "3600"])
        ctx.log.warning("hanging: module pid %d, helper pid %d", os.getpid(), helper.pid)
        time.sleep(3600)
    if how == "exit":
        os._exit(7)
    if how == "nothing":
        return
    if how == "step-then-hang":
        ctx.cmd(["echo", "first step"])
        time.sleep(3600)
    if how == "fail-then-step":
        first = ctx.targets[0].hostname
        ctx.shell('[ "$1" != "$2" ]', args=[first, first], hosts=[first])  # fails on the first
        ctx.cmd(["echo", "second step"])  # runs on the others only
    if how == "secret":
        ctx.cmd(["echo", f"the token is {params['token']}"])
    if how == "log":
        ctx.log.warning("about to use %s", params["token"])
        ctx.cmd(["true"])
    if how == "big":
        ctx.cmd(["head", "-c", str(params["size"]), "/dev/zero"])
