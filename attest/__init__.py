"""attest: the attestation format library and the CI-side command (in progress; see issue 3)."""
