"""The messaging worker: each room's timeline of messages and announcements, numbered by ``seq``."""
