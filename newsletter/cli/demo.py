"""Commands: demo (filled in by its own module)."""

COMMANDS: list = []
