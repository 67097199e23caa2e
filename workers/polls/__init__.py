"""The polls worker: the Poll aggregate (creation, votes, closing by hand or when everyone voted,
the winner) and participants leaving with the meetup's room."""
