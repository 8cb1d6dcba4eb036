"""Consent, audit and (later) erasure and encryption: privacy is part of the spine."""
