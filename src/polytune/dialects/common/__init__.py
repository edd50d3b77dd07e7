"""What every dialect shares: the services container, auth, body parsing, streamed multipart."""
