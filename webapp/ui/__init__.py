"""The Gradio views: one file per view, plus the pure image helpers they share."""
