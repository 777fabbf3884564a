"""Settings and rule files: their schema, units, loading with located errors, editing."""
