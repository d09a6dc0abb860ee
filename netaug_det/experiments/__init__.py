"""Experiments above the models and tools: runs of the project's train/test tools as child
processes with fingerprints and resume (``runs``), method comparisons over seeds
(``compare``), the resolution sweep (``sweep``) and their statistics (``stats``)."""
