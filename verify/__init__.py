"""verify: the deploy-side verifier (not started yet)."""
