"""Commands: editions (filled in by its own module)."""

COMMANDS: list = []
