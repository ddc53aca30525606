"""GitOps pipeline commands: preview (review), deploy (merge) and drift-check (schedule)."""
