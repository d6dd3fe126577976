"""python -m verify [STACK_FILE ...]: prove stacks' cluster definitions offline, one line per check.

Exit status 0 when every check of every stack passed. Needs Debian's cluster tools (scripts/setup) and root (it
uses private mount and network namespaces).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from components.settings import SettingsError

from .checks import verify_stack
from .stackfile import settings_from_stack_file
from .zygote import PcsZygote


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m verify", description=__doc__.splitlines()[0])
    parser.add_argument("stacks", nargs="*", type=Path, help="stack files (default: every Pulumi.<stack>.yaml here)")
    args = parser.parse_args(argv)
    stacks = args.stacks or sorted(p for p in Path.cwd().glob("Pulumi.*.yaml"))
    ok = True
    with PcsZygote() as pcs:
        for stack in stacks:
            try:
                settings = settings_from_stack_file(stack)
            except SettingsError as err:
                print(f"== {stack}\nFAIL  settings   {err}")
                ok = False
                continue
            started = time.monotonic()
            report = verify_stack(settings, str(stack), pcs_socket=pcs.socket)
            print(report.text() + f" ({time.monotonic() - started:.1f} s)")
            ok = ok and report.ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
