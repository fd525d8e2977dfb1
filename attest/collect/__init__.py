"""Collectors: each reads one kind of fact from the build machine and returns typed values.

Every collector takes its inputs (paths, an environment mapping, a clock) as arguments, so tests
drive them with real files and a fixed environment.
"""
