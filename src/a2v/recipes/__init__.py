"""Recipes: one self-contained folder per published method, built on the shared core."""
