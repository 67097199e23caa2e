"""The users worker: the user directory (profiles from sign-ins) and presence."""
