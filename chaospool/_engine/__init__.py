"""The experiment engine: a pure scheduler and the run loop with its rollback guarantee."""
