"""The notifications worker: device registrations, a presence replica, and pushes of new room items
to participants with no open connection, through firebase-admin."""
