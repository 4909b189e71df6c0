"""The background loop: the Huey instance, its tasks and their consumer (pre-annotation, SAM
embeddings, retraining).

================== ==========================================================================
module             job
================== ==========================================================================
queue              the Huey instances, one per route (train, light), and binding the table
tasks              the task functions and their table (name → function, Huey settings)
context            :class:`WorkerContext`: what tasks share in one worker process
client             the web process's side: enqueue tasks by name (the studio's TaskQueue)
consumer           ``python app.py worker [--queues]``: clean up, run a consumer per queue
cli                the ``worker`` sub-command
child_process      the worker that ``serve`` runs beside the web server
options            FACET_* tuning, resolved once at an entry point
retraining         one retraining run: snapshot, train, evaluate, publish
trigger            when the loop retrains by itself
snapshot           which labels a run sees and which are held out
reaper             training runs whose worker is gone
sam_cache          the SAM model a worker process keeps loaded
================== ==========================================================================
"""
