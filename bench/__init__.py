"""newswatch's benchmark suite: ``.venv/bin/python -m bench`` (see bench/README.md)."""
