"""One module per view: its layout and its callbacks."""
