"""Families kept outside mockserver (registered the way a plugin's would be)."""
