"""Test module: echoes its parameters back, by argv and by shell environment."""

NAME = "echo"
CAPTION = "Print the parameters back; tests prove they arrive literally."
PARAMS = [
    {"name": "text", "type": "str", "default": "hello", "help": "any text"},
    {"name": "count", "type": "int", "default": 1, "min": 0, "max": 100},
    {"name": "token", "type": "str", "sensitive": True, "help": "a secret"},
]


def run(ctx, params):
    ctx.cmd(["printf", "%s", params["text"]])
    ctx.shell('printf "%s|%s|%s" "$OM_TEXT" "$OM_COUNT" "$1"', args=[params["text"]])
