"""The installed form of firehose-console (README: "Development", packaging).

A wheel carries the repository's ``engine/`` and ``console/`` inside this package, so installing
it claims no top-level ``engine`` or ``console`` name in anyone's site-packages. The launcher
(``firehose_console.launcher``) makes them importable under their own names, inside the
console's own process only.
"""
