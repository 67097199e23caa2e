"""Boochat contracts: the client protocol, internal envelopes and routing names.

Depends on nothing else in the project; the gateway and every worker import it.
"""
