"""The audit indexes: what each stored body says, derived from the log alone.

- :mod:`ledger.index.facts` — read one body (pure);
- :mod:`ledger.index.signers` — who signed it, by the registry before it;
- :mod:`ledger.index.rows` — the rows, written in the append transaction;
- :mod:`ledger.index.maintain` — ``ledger reindex`` and ``ledger check``'s comparison;
- :mod:`ledger.index.query` — the searches the audit API answers;
- :mod:`ledger.index.derived` — the rules of the story and changes answers (pure: the client
  runs them again on the proved bodies).
"""

__all__: list[str] = []
