"""The command line: ``grader`` and its subcommands (``commands/``), one module per command."""
