"""Scale-out on real engines: the same grid units run in this process, as SLURM array jobs (submitit) or as
Ray tasks, and one large dataset's features can be extracted through Ray Data.

Units write their own results to disk, so nothing travels back through an engine: the results store is the
one place results meet, and a unit already done is never resubmitted (a killed run resumes). The engines are
optional (``pip install -e '.[cluster]'``); importing this package does not import them.
"""
