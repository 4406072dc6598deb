"""Watching a Kubernetes cluster: raw objects in, model events out."""
