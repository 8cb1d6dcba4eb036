"""Customer data platform: source records, identity resolution, profiles, segments."""
