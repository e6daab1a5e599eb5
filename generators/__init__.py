"""facebench."""
