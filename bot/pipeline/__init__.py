"""One poll-match-enqueue-deliver cycle over the store, fetcher and notifiers."""
