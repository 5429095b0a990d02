"""wan-tui: a terminal dashboard and CLI for hosted AI video generation."""

# The one place the version is written: pyproject reads it from here (tool.hatch.version).
__version__ = "0.2.0"
