"""verify: the deploy-side gate — decide from proved ledger evidence whether an artifact ships.

- :mod:`verify.policy` — the YAML policy (``provenance-ledger.dev/v1``, ``VerifyPolicy``);
- :mod:`verify.pipeline` — the numbered verification steps (evidence → verdict);
- :mod:`verify.sources` — evidence from a file, a ledger's API or its database;
- :mod:`verify.errors` — the error tree, one exit code per class;
- :mod:`verify.cli` — the ``verify`` console script.
"""

__all__: list[str] = []
