"""The trace-driven simulator behind ``burstd simulate``.

It replays a workload on a simulated cluster and lets burstd's own control loop
(``burstd.control.loop.Controller``) decide, through a simulated ``ClusterView`` and simulated
providers. Modules: ``trace`` and ``synthetic`` (workloads), ``cluster`` (nodes and the
scheduler), ``providers`` (the actuator's driver), ``engine`` (the event loop), ``wakeups``
(which control-loop passes may be skipped), ``results``, ``compare`` (baselines), ``sweep`` and
``report``. docs/simulator.md explains it all.
"""
