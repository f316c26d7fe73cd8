"""The fronts of firehose-console: the Textual TUI (console.app) and the CLI (console.cli)."""
