"""Developer and deployment tools; not part of the installed package."""
