"""Start a lab by hand (for ``make run`` or a demo) and keep it up until Ctrl-C / SIGTERM.

    .venv/bin/python -m tests.lab ansible --env-file var/lab.env --targets-file var/lab.json

Prints (or writes) the OMSERVER_* settings that point the daemon at the lab,
and the targets as JSON, the shape clients send.
"""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import threading
from pathlib import Path

from tests.lab.salt import SaltLab
from tests.lab.sshd import SshLab


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.lab", description=__doc__)
    parser.add_argument("backend", choices=["saltstack", "ansible"])
    parser.add_argument("--env-file", type=Path, help="write KEY=value lines here")
    parser.add_argument("--targets-file", type=Path, help="write the targets as JSON here")
    args = parser.parse_args()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with SaltLab() if args.backend == "saltstack" else SshLab() as lab:
        env = "".join(f"{k}={shlex.quote(v)}\n" for k, v in lab.settings().items())
        targets = json.dumps([t.to_dict() for t in lab.targets], indent=2)
        for path, text in ((args.env_file, env), (args.targets_file, targets)):
            if path:
                path.write_text(text)
        print(env + targets, flush=True)
        stop.wait()


if __name__ == "__main__":
    main()
