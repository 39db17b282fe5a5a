"""The toy family: a made-up provider, one folder and one contract, that wanmock serves
without any file under mockserver/ knowing it (tests/test_toy_family.py)."""
