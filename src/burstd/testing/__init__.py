"""Stand-ins for the parts of a real site that cannot run here (an HPC centre's virtual
kubelet, a donor cluster), for rehearsals and integration tests on the local control plane.
They talk to a real API server; only the far side (Slurm, the donor) is emulated."""
