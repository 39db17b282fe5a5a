"""The family-neutral engine: clock, tasks and their lifecycle, store, journal, artifacts.

Nothing in here imports Starlette or any provider module (see ARCHITECTURE.md).
"""
