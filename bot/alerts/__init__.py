"""From matches to messages: summaries, folding floods, digests, rendering."""
