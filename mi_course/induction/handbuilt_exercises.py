"""Exercises of chapter 04's last section: an induction circuit written by hand (registered on import)."""
