"""Stand-ins for systems that cannot run on a test machine, driven against real API servers
(the Liqo emulator in ``liqo.py``). Shipped tools for rehearsals and tests, never imported by
the daemon."""
