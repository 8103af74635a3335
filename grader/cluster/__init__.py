"""Batches on Dask: the same per-submission pipeline on ``dask.distributed`` workers.

``spec`` reads what ``--cluster`` names (``local``, ``tcp://HOST:PORT``, a cluster file for
dask-jobqueue); ``task`` is what runs on a worker (bytes in, bytes out); ``run`` is the client that
feeds the workers and hands ``Outcome``s to ``grader.course.batch.run_batch``. See docs/CLUSTER.md.
"""
