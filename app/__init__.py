"""PruneScope's Dash app: reads the store (never torch), shows the linked views."""
