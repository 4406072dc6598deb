"""Stand-ins for what cannot run on a test machine — a GPU's DCGM exporter, a donor cluster's
Liqo controllers, an HPC site's virtual kubelet — driven against real API servers and a real
Prometheus. Shipped tools for rehearsals and tests, never imported by the daemon."""
