"""Tests of the sample bot: its custom actions and its domain content."""
