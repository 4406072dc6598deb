"""End-to-end tests against the real control plane of scripts/kube-testenv."""
