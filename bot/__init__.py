"""newswatch: watch news feeds and alert when stories match your rules."""

__version__ = "0.1.0"
