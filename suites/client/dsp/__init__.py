"""Checks of the shared care record's clients: document sources (ITI-65 provide) and document
consumers (ITI-67 find, ITI-68 retrieve, the access rules)."""
