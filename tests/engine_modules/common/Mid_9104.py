"""Test module: reports how often its module-level state was touched, and by which process."""

import os

CALLS = []

NAME = "state probe"
CAPTION = "Print how many runs this module object has seen, and the job process id."
PARAMS = []


def run(ctx, params):
    CALLS.append(1)
    ctx.cmd(["echo", str(len(CALLS)), str(os.getpid())])
