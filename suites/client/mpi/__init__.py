"""Checks of the patient index's clients: identity sources (the feed) and identity consumers (PIXm,
PDQm, merged records)."""
