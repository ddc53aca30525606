"""Test harnesses that start real servers for the end-to-end tests."""
