"""The Gradio studio and the REST API beside it (one FastAPI app). No training code here."""
