"""Email newsletter and announcement dispatcher."""

__version__ = "0.1.0"
