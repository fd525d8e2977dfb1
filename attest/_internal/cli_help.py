"""What ends every ``attest`` command's ``--help``: an example that works as written (a test runs
them all, in order, in one directory) and the exit codes."""

from __future__ import annotations

EXIT_CODES = (
    "Exit codes: 0 ok, 1 signature or verification failure, 2 bad input, "
    "3 ledger unreachable or refusing."
)


RUN_EXIT_CODES = (
    "Exit codes: the step's own code once it has run and been attested; before that 1 signature "
    "failure, 2 bad input, 3 ledger unreachable or refusing."
)


def epilog(example: str, codes: str = EXIT_CODES) -> str:
    return f"Example: {example}\n\n{codes}"
