"""A separate appender process for the concurrency and crash tests.

Usage: python -m tests.ledger.appender DB_URL KEY_FILE START COUNT BATCH
Prints ``index leafhash-hex`` for every acknowledged append, flushed at once.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ledger.log import Ledger
from tests.conftest import envelope


def main() -> None:
    url, key, start, count, batch = sys.argv[1], Path(sys.argv[2]), *map(int, sys.argv[3:6])
    with Ledger.open(url, key) as ledger:
        for lo in range(start, start + count, batch):
            bodies = [envelope(i) for i in range(lo, min(lo + batch, start + count))]
            for r in ledger.append_many(bodies):
                sys.stdout.write(f"{r.index} {r.leaf_hash.hex()}\n")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
