"""likeness: find misuse of consenting people's faces and protected images."""

__version__ = "0.1.0"
