"""Deployment: the scoring contract, online endpoints (control plane and router), and their CLI."""
