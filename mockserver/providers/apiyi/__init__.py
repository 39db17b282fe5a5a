"""The apiyi family."""
