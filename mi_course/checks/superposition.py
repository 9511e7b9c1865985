"""Exercises for chapter 03, toy models of superposition (being written)."""
