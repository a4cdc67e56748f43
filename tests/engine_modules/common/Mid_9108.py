"""Test module: prints ``mib`` MiB on each host, then reports how much the job process
(this one) grew meanwhile, as the output of a second step: ``rss_growth_kib=<n>``."""

from pathlib import Path

NAME = "flood"
CAPTION = "Print a flood of output and measure the job process."
PARAMS = [{"name": "mib", "type": "int", "default": 60, "min": 1, "max": 1024}]


def _kib(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)


def run(ctx, params):
    Path("/proc/self/clear_refs").write_text("5")  # the peak (VmHWM) starts again from here
    idle = _kib("VmRSS")
    ctx.shell("head -c \"$1\" /dev/zero | tr '\\0' x", args=[params["mib"] * 1024 * 1024])
    ctx.cmd(["echo", f"rss_growth_kib={_kib('VmHWM') - idle}"])
