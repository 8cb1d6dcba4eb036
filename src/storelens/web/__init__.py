"""The manager's dashboard: server-rendered pages over the API's own sign-in and data.

``storelens serve`` runs :func:`storelens.web.site.create_site`: the API plus the
pages Today (live), Floor (heat and zones), Operations (history), Customers and
Campaigns, signed in with an httpOnly cookie holding the API's token.
"""

__all__: list[str] = []
