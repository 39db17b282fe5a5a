"""Replicate: predictions of the wan-video/* models (contracts/replicate.yaml)."""
