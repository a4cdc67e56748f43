"""Test module: prints a numbered line every ``pause_ms`` milliseconds, on stdout and stderr."""

NAME = "lines"
CAPTION = "Print numbered lines slowly."
PARAMS = [
    {"name": "lines", "type": "int", "default": 5, "min": 1, "max": 600},
    {"name": "pause_ms", "type": "int", "default": 1000, "min": 0, "max": 60000},
]

SCRIPT = (
    'i=1; while [ "$i" -le "$1" ]; do '
    'echo "line $i"; echo "note $i" >&2; sleep "$2"; i=$((i+1)); done'
)


def run(ctx, params):
    ctx.shell(SCRIPT, args=[params["lines"], f"{params['pause_ms'] / 1000:g}"])
