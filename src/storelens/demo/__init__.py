"""The ``storelens demo`` command and its sample data: a working store for a newcomer to explore."""
