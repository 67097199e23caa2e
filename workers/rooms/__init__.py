"""The rooms worker: the Room aggregate (creation, membership, names, images, read marks)."""
