"""What our backends cost on top of the engines they drive, measured side by side.

Starts a salt-master with two minions and two sshd targets (tests/lab), then,
interleaving the two sides of each comparison over several rounds, prints the
median ratios as ``name=value`` lines:

* ``salt_sdk_vs_localclient``: ``ctx.cmd(argv)`` through the Salt backend ÷ a raw
  ``LocalClient.cmd`` of the same ``cmd.run_all`` on the same minions (goal ≤ 1.05);
* ``ansible_backend_vs_cli``: a job through our Ansible backend, as the daemon
  runs it (child process from the forkserver) ÷ the ``ansible`` command line
  running the same command on the same inventory (goal ≤ 1.0).

And, for context: ``salt_job_vs_localclient`` (a whole job — child process,
module load, backend — ÷ the raw call) and ``ansible_inprocess_vs_cli``.

Run: ``.venv/bin/python bench/backend_overhead.py [--rounds N]``
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the lab lives in tests/

from omserver.backends import make_backend  # noqa: E402
from omserver.config import Config  # noqa: E402
from omserver.jobs import execution  # noqa: E402
from omserver.modules.registry import ModuleRegistry  # noqa: E402
from omserver.sdk import Context, HostResult, Target  # noqa: E402
from tests.lab.salt import SaltLab  # noqa: E402
from tests.lab.sshd import SshLab  # noqa: E402

ARGV = ["uname", "-r"]
MODULE = """NAME = "bench"
CAPTION = "one command"


def run(ctx, params):
    ctx.cmd({argv!r})
"""


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def compare(ours: Callable[[], object], theirs: Callable[[], object], rounds: int) -> float:
    """Median of ours ÷ median of theirs, alternating which goes first."""
    ours(), theirs()  # warm both: connections, caches
    mine, other = [], []
    for n in range(rounds):
        pair = [(mine, ours), (other, theirs)]
        for samples, action in pair if n % 2 else reversed(pair):
            samples.append(timed(action))
    return statistics.median(mine) / statistics.median(other)


def check(events: list[object], hosts: int) -> None:
    """Every host ran its step ok (``events``: step results, or all a job streamed)."""
    results = [e for e in events if isinstance(e, HostResult)]
    if len(results) != hosts or any(not r.ok for r in results):
        raise SystemExit(f"a benchmark run failed: {events}")


def in_process_context(config: Config, targets: list[Target]) -> Callable[[], None]:
    backend = make_backend(config)

    def run() -> None:
        results: list[HostResult] = []
        ctx = Context(
            backend,
            targets,
            params={},
            settings={},
            deadline=time.monotonic() + 60,
            output_limit=1024 * 1024,
            emit=results.append,
        )
        ctx.cmd(ARGV)
        check(results, len(targets))

    return run


def job(config: Config, targets: list[Target], registry: ModuleRegistry) -> Callable[[], None]:
    def run() -> None:
        module = registry.get(9000)
        check(list(execution.execute(module, targets, {}, config=config, timeout=60)), len(targets))

    return run


def salt(lab: SaltLab, registry: ModuleRegistry, rounds: int) -> dict[str, float]:
    config = Config(lab.settings())
    client = lab.client()

    def raw() -> None:
        replies = client.cmd(
            lab.minion_ids,
            "cmd.run_all",
            tgt_type="list",
            kwarg={"cmd": ARGV, "python_shell": False},
        )
        if len(replies) != len(lab.minion_ids):
            raise SystemExit(f"raw LocalClient run failed: {replies}")

    return {
        "salt_sdk_vs_localclient": compare(in_process_context(config, lab.targets), raw, rounds),
        "salt_job_vs_localclient": compare(job(config, lab.targets, registry), raw, rounds),
    }


def ansible(lab: SshLab, registry: ModuleRegistry, folder: Path, rounds: int) -> dict[str, float]:
    config = Config(lab.settings())
    inventory = folder / "inventory.ini"
    common = f"-o UserKnownHostsFile={lab.known_hosts}"
    inventory.write_text(
        "".join(
            f"{t.hostname} ansible_host={t.lan_ip} ansible_port={t.ssh_port} "
            f"ansible_user={t.ssh_user} ansible_ssh_private_key_file={lab.private_key} "
            f"ansible_ssh_common_args='{common}' ansible_python_interpreter=/usr/bin/python3 "
            f"ansible_ssh_pipelining=true\n"
            for t in lab.targets
        )
    )
    command = [
        str(Path(sys.executable).parent / "ansible"),
        "all",
        "-i",
        str(inventory),
        "-f",
        str(config["ansible.forks"]),
        "-m",
        "ansible.builtin.command",
        "-a",
        " ".join(ARGV),
    ]

    def cli() -> None:
        subprocess.run(command, check=True, capture_output=True)

    return {
        "ansible_backend_vs_cli": compare(job(config, lab.targets, registry), cli, rounds),
        "ansible_inprocess_vs_cli": compare(in_process_context(config, lab.targets), cli, rounds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15, help="timed runs per side")
    rounds = parser.parse_args().rounds
    execution.warm_up()
    with tempfile.TemporaryDirectory(prefix="omserver-bench-") as tmp:
        folder = Path(tmp)
        (folder / "modules" / "common").mkdir(parents=True)
        (folder / "modules" / "common" / "Mid_9000.py").write_text(MODULE.format(argv=ARGV))
        figures: dict[str, float] = {}
        with SaltLab() as lab:
            figures |= salt(lab, ModuleRegistry(folder / "modules", "saltstack"), rounds)
        with SshLab() as lab:
            figures |= ansible(lab, ModuleRegistry(folder / "modules", "ansible"), folder, rounds)
    for name, value in figures.items():
        print(f"{name}={value:.3f}")


if __name__ == "__main__":
    main()
