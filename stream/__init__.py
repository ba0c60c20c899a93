"""The Faust stream app: fault predictions -> deduplicated, escalating alerts -> database and alert feed."""
