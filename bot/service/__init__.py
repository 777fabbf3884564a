"""The long-running daemon: scheduling, reloads, health and metrics endpoints."""
