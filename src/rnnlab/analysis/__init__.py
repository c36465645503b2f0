"""Reading finished runs: the doctor (and, later, hidden-state dynamics)."""
