"""The headless engine of firehose-console: settings, records, delivery, verification, sandbox.

Nothing in this package imports Textual or prints; the console and the CLI are fronts over it.
"""
