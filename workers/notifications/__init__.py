"""The notifications worker: device registrations, a presence replica (in MongoDB, and mirrored in
each process's memory), and pushes of new room items to participants with no open connection,
through firebase-admin."""
