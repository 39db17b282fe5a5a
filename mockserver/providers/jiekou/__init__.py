"""The jiekou family."""
