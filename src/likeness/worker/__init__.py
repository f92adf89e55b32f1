"""Background work on a task queue: procrastinate, on the store's own PostgreSQL (no other service).

``queue.make_queue`` builds the procrastinate App with every task module's ``blueprint``; ``tasks`` holds the
pipeline's steps as jobs over ids and paths, calling the same functions the in-process scan calls
(services/tasks.py), so a job retried after a crash (or run twice) changes nothing the first run stored. Queues go
by role: ``analysis`` (CPU or GPU machines), ``io`` (crawling, fetching), ``match``; ``maintenance`` (the stalled
job check) is listened to by every worker. ``jobs`` lists jobs, records their errors and retries failed ones.
"""
