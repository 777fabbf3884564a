"""Fetching feeds over HTTP: the client, its address policy and bounded decoding."""
