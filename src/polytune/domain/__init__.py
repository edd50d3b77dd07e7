"""The domain: JobSpec, Job, statuses and transitions, errors. No I/O, no polytune imports."""
