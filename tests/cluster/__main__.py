"""`python -m tests.cluster [--long]`: build the bed, run the faults, print the table."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from tests.cluster.net import namespaces_available
from tests.cluster.scenario import run


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.cluster")
    parser.add_argument("--long", action="store_true", help="hold each fault 30 s (not 4 s)")
    args = parser.parse_args()
    why_not = namespaces_available()
    if why_not:
        print(f"cannot build the cluster here: {why_not}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="sbcluster-") as work:
        hold, settle = (30.0, 10.0) if args.long else (4.0, 4.0)
        report = run(Path(work), hold=hold, settle=settle)
    print(report.table())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
