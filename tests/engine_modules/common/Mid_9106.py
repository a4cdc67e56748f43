"""Test module: prints a numbered line every ``interval`` seconds, on stdout and stderr."""

NAME = "lines"
CAPTION = "Print numbered lines slowly."
PARAMS = [
    {"name": "lines", "type": "int", "default": 5, "min": 1, "max": 600},
    {"name": "interval", "type": "float", "default": 1.0, "min": 0, "max": 60},
]

SCRIPT = (
    'i=1; while [ "$i" -le "$1" ]; do '
    'echo "line $i"; echo "note $i" >&2; sleep "$2"; i=$((i+1)); done'
)


def run(ctx, params):
    ctx.shell(SCRIPT, args=[params["lines"], params["interval"]])
