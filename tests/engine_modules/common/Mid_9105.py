"""Test module: raises before it runs anything."""

NAME = "raises"
CAPTION = "Always raises ValueError."
PARAMS = []


def run(ctx, params):
    raise ValueError("this module always fails")
