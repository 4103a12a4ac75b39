"""eqlab's pytest plugin: the checks' side of a run.

``plugin`` (the ``pytest11`` entry point: hooks), ``fixtures`` (what checks are given), ``session``
(the run-wide state in the config's stash), ``outcomes`` (a check's reports -> one ItemResult), and
the two halves of the contract with the runner: ``run_config`` (what the plugin is told) and
``events`` (what it tells back). The runner imports only those two, which import no pytest.
"""
