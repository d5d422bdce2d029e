"""explore and shrink (docs/explore.md): draw fault schedules from an experiment's ``explore:``
section, run them until one breaks a tolerance, and shrink that one to a minimal experiment.

``draw`` (pure schedules), ``space`` (what one fault may draw), ``steps`` (schedules as data),
``document`` (runnable YAML), ``runner`` (one run through the engine), ``shrink`` (the passes and
the k-of-n decision), ``session`` (explore and shrink end to end).
"""
