"""Channels for Rasa. Importing this package imports no web framework."""
