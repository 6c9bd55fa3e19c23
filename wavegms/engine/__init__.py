"""The engine: everything that trains, checkpoints, evaluates and runs a Wave-GMS model.

:mod:`.config` (the settings of a run) -> :mod:`.run_data` (its datasets and loaders) ->
:mod:`.train` (the epoch loop) -> :mod:`.checkpoint` (the run folder); then :mod:`.evaluate`
and :mod:`.predict`, with :mod:`.metrics` and :mod:`.prior` (the constant-mask baseline every
score is shown beside). :mod:`.demo` runs all of it on synthetic data. The model itself is
:mod:`wavegms.model`.
"""
