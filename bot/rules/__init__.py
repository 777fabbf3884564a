"""The rule language: parsing queries, compiling rule sets, matching, explaining."""
