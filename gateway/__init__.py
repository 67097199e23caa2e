"""The WebSocket gateway: authenticate, validate, forward to the owning worker, relay deliveries."""
