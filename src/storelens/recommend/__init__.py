"""Recommendations: candidate sources, the learned blend and its evaluation (offline, the
``recommend`` extra), and serving (candidates per customer re-ranked per request under
the business rules). Other domains call
:meth:`storelens.recommend.engine.RecommendationEngine.recommend_for`.
"""

__all__: list[str] = []
