"""Private helpers of :mod:`verify`."""
