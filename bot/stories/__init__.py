"""Stories: the tellings of one event across feeds, outlets and languages."""
