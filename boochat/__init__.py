"""Boochat's platform: settings, logging, broker topology, request/reply and the command line."""
