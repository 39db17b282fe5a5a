"""wanmock's version (ground floor: every layer may read it; hatch reads it for the package)."""

__version__ = "0.1.0"
