"""Private helpers of :mod:`attest`; not part of the public surface."""
