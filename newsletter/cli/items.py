"""Commands: items (filled in by its own module)."""

COMMANDS: list = []
