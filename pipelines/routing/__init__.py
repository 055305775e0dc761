"""`cityops route ...`: routing problems from files (rules.routing solves them)."""
