"""Worker modules shipped with chaospool (``chaospool.workers.demo``)."""
