"""The background loop: the Huey instance and its tasks; the only place where db and model meet."""
