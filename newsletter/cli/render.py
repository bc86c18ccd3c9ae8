"""Commands: render (filled in by its own module)."""

COMMANDS: list = []
