"""Kubernetes integration: CRDs generated from the model (`crds`)."""
