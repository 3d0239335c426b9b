"""`python -m pipeline ui`: the operator console in the browser (live views, alert feed with snapshots, camera
health), served from what the pipeline writes to Redis and nothing else."""
