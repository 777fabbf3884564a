"""Stories: which items tell the same news, across outlets and languages."""
