"""The newapi family."""
