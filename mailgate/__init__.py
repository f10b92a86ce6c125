"""mailgate."""
