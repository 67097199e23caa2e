"""The media worker: uploads, their checks, thumbnails and lifecycle (PROTOCOL.md, Photos and files)."""
