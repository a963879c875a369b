"""The one exception type for bad user input anywhere in speedynas.

Command-line entry points catch :class:`SpeedyNASError` and print its message as a single line
with exit status 2; any other exception is a bug and keeps its traceback.
"""


class SpeedyNASError(ValueError):
    """A user-facing input error (arch text, config, path, checkpoint, data folder)."""
