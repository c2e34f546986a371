"""Sign-in with the company's OpenID Connect provider: the provider's metadata and keys
(provider.py), ID and bearer token checks (tokens.py), people and their groups
(users.py), server-side sessions and pending sign-ins (sessions.py), and the service
that ties them into the page's sign-in and the API's bearer tokens (service.py).
"""
